/**
 * Placements in the files serving engines load, written and read back:
 *
 * - `sglang`: `--init-expert-location` JSON `{"physical_to_logical_map": [[...] per layer]}`
 *   — the only key, because SGLang passes the dict as keyword arguments to
 *   `ExpertLocationMetadata.init_by_mapping` (`python/sglang/srt/eplb/expert_location.py`).
 * - `sglang-count`: the same flag's other form, `{"logical_count": [[...] per layer]}`, which
 *   makes SGLang run its own EPLB at start (`init_by_eplb`).
 * - `vllm`: the expert-map JSON of vLLM's static EPLB (`expert_map_path`, read by
 *   `_expert_file_to_tensor` in vllm-ascend's `vllm_ascend/ops/expert_load_balancer.py` and
 *   vLLM's `eplb_adaptor/vllm_adaptor.py`): `{moe_layer_count, layer_list: [{layer_id,
 *   device_count, device_list: [{device_id, device_expert: [...]}]}]}`, layers by position.
 * - `trtllm`: TensorRT-LLM's `moe_load_balancer.yaml` (`MoeLoadBalancerConfig` in
 *   `tensorrt_llm/llmapi/llm_args.py`, a strict model): `num_slots`, `initial_global_assignments`
 *   (layer index → slot list, `num_slots` long, every `num_slots / ep_size` successive slots one
 *   rank) and `layer_updates_per_iter: 0` (static).
 * - `eplb`: DeepSeek EPLB's `{phy2log, log2phy, logcnt}`; `moe-route`: {@link placementToJSON}'s document.
 */
import { ErrorCodes, MoeError, maxOf } from '@moe-route/core'
import { parse as parseYaml } from 'yaml'
import { inverseTables } from './json.js'

/** Output formats of {@link writeEnginePlacement}. */
export type EngineFormat = 'sglang' | 'sglang-count' | 'vllm' | 'trtllm' | 'eplb' | 'moe-route'

/** Every engine format, for help texts. */
export const ENGINE_FORMATS: readonly EngineFormat[] = ['sglang', 'sglang-count', 'vllm', 'trtllm', 'eplb', 'moe-route']

/** Per-layer placements as slot tables: `phy2log[i][s]` = expert in slot s (GPU-major) at layer `layers[i]`. */
export interface LayeredPlacement {
  readonly layers: readonly number[]
  readonly gpus: number
  readonly experts: number
  readonly phy2log: readonly (readonly number[])[]
}

const bad = (message: string, details: Record<string, unknown> = {}) => new MoeError(ErrorCodes.INPUT_INVALID, message, details)

/** Checks a layered placement: rectangular, slots divide over the GPUs, ids in range, every expert placed. */
export function checkLayeredPlacement(p: LayeredPlacement): void {
  if (!Number.isInteger(p.gpus) || p.gpus < 1) throw bad(`gpus must be a positive integer, got ${p.gpus}`, { path: '/gpus' })
  if (p.phy2log.length === 0 || p.phy2log.length !== p.layers.length) throw bad(`${p.phy2log.length} slot rows for ${p.layers.length} layers`, { path: '/phy2log' })
  const S = p.phy2log[0].length
  p.phy2log.forEach((row, i) => {
    if (row.length !== S) throw bad(`layer ${p.layers[i]} has ${row.length} slots, layer ${p.layers[0]} ${S}`, { path: `/phy2log/${i}` })
    if (S % p.gpus !== 0) throw bad(`${S} slots do not divide over ${p.gpus} GPUs`, { path: `/phy2log/${i}` })
    const seen = new Array<boolean>(p.experts).fill(false)
    row.forEach((e, s) => {
      if (!Number.isInteger(e) || e < 0 || e >= p.experts) throw bad(`layer ${p.layers[i]} slot ${s} holds expert ${e}, outside 0..${p.experts - 1}`, { path: `/phy2log/${i}/${s}` })
      seen[e] = true
    })
    const missing = seen.indexOf(false)
    if (missing >= 0) throw bad(`layer ${p.layers[i]} has no slot for expert ${missing}`, { path: `/phy2log/${i}` })
  })
}

/**
 * Serialises per-layer placements for an engine.
 * @param loads `sglang-count` only: per-layer expert loads (the placement's layers)
 * @example
 * writeFileSync('init_expert_location.json', writeEnginePlacement(layered, 'sglang'))
 */
export function writeEnginePlacement(p: LayeredPlacement, format: EngineFormat, loads?: readonly ArrayLike<number>[]): string {
  checkLayeredPlacement(p)
  const rows = p.phy2log.map((r) => [...r])
  switch (format) {
    case 'sglang':
      return JSON.stringify({ physical_to_logical_map: rows })
    case 'sglang-count': {
      if (!loads || loads.length !== p.layers.length) throw bad('sglang-count needs per-layer expert loads', { path: '--format' })
      return JSON.stringify({ logical_count: loads.map((l) => Array.from(l, (v) => Math.round(v))) })
    }
    case 'vllm': {
      const per = rows[0].length / p.gpus
      return JSON.stringify(
        {
          moe_layer_count: rows.length,
          layer_list: rows.map((row, i) => ({
            layer_id: i,
            device_count: p.gpus,
            device_list: Array.from({ length: p.gpus }, (_, d) => {
              const experts = row.slice(d * per, (d + 1) * per)
              if (new Set(experts).size !== experts.length) {
                throw bad(`layer ${p.layers[i]} puts two replicas of one expert on device ${d}; vLLM's expert map cannot express that (one local slot per expert)`, { path: '--format' })
              }
              return { device_id: d, device_expert: experts }
            }),
          })),
        },
        null,
        2,
      )
    }
    case 'trtllm':
      // Integer layer keys and flow lists, as the engine's generate_eplb_config.py writes them.
      return [
        `num_slots: ${rows[0].length}`,
        'initial_global_assignments:',
        ...p.layers.map((l, i) => `  ${l}: [${rows[i].join(', ')}]`),
        'layer_updates_per_iter: 0',
        '',
      ].join('\n')
    case 'eplb': {
      const { log2phy, logcnt } = inverseTables(rows, p.experts)
      return JSON.stringify({ phy2log: rows, log2phy, logcnt })
    }
    case 'moe-route': {
      const { log2phy, logcnt } = inverseTables(rows, p.experts)
      return JSON.stringify({ format: 'moe-route.placement/v1', numGpus: p.gpus, numExperts: p.experts, layers: [...p.layers], phy2log: rows, log2phy, logcnt }, null, 2)
    }
    default:
      throw bad(`unknown placement format ${JSON.stringify(format)} (known: ${ENGINE_FORMATS.join(', ')})`, { path: '--format' })
  }
}

/** Options of {@link readEnginePlacement}. */
export interface ReadPlacementOptions {
  /** GPUs (EP ranks); needed for SGLang and TensorRT-LLM files, which do not store it. */
  readonly gpus?: number
  /** Experts E (default: largest id + 1). */
  readonly experts?: number
  /** Name used in errors. */
  readonly file?: string
}

const isIntRow = (r: unknown): r is number[] => Array.isArray(r) && r.every((v) => Number.isInteger(v))

/**
 * Reads a placement file of any {@link EngineFormat} (detected from its content) back into
 * per-layer slot tables. Errors are `MOE_ROUTE_ERR_INPUT_INVALID` naming the file and the field.
 */
export function readEnginePlacement(text: string, options: ReadPlacementOptions = {}): LayeredPlacement & { readonly format: EngineFormat } {
  const file = options.file ?? 'placement'
  const fail = (m: string, path = '/') => bad(`${file}: ${m}`, { file, path })
  const trimmed = text.trimStart()
  let doc: unknown
  let yaml = false
  if (trimmed.startsWith('{') || trimmed.startsWith('[')) {
    try {
      doc = JSON.parse(text)
    } catch (cause) {
      throw fail(`not valid JSON: ${(cause as Error).message}`)
    }
  } else {
    try {
      doc = parseYaml(text)
      yaml = true
    } catch (cause) {
      throw fail(`not valid JSON or YAML: ${(cause as Error).message}`)
    }
  }
  const needGpus = (what: string) => {
    if (options.gpus === undefined) throw fail(`${what} does not store the GPU count: pass it (--devices)`, '/gpus')
    return options.gpus
  }
  const finish = (format: EngineFormat, layers: number[], gpus: number, phy2log: number[][]) => {
    const experts = options.experts ?? maxOf(phy2log.flat()) + 1
    const p = { format, layers, gpus, experts, phy2log }
    try {
      checkLayeredPlacement(p)
    } catch (e) {
      throw fail((e as Error).message)
    }
    return p
  }
  if (Array.isArray(doc)) {
    const rows = isIntRow(doc) ? [doc] : doc
    if (!rows.every(isIntRow)) throw fail('a bare array must be phy2log: [slots] or [[slots] per layer]', '/')
    return finish('eplb', rows.map((_, i) => i), needGpus('a bare phy2log array'), rows as number[][])
  }
  if (typeof doc !== 'object' || doc === null) throw fail('is not a placement document')
  const o = doc as Record<string, unknown>
  const only = (keys: string[], format: string) => {
    for (const k of Object.keys(o)) if (!keys.includes(k)) throw fail(`unknown key "${k}" in a ${format} file (expected ${keys.join(', ')})`, `/${k}`)
  }
  if (yaml || 'initial_global_assignments' in o || 'num_slots' in o) {
    only(['num_slots', 'initial_global_assignments', 'layer_updates_per_iter'], 'TensorRT-LLM moe_load_balancer')
    const a = o.initial_global_assignments
    if (typeof a !== 'object' || a === null || Array.isArray(a)) throw fail('"initial_global_assignments" must map layer indices to slot lists', '/initial_global_assignments')
    const S = o.num_slots
    const entries = Object.entries(a as Record<string, unknown>).map(([k, v]) => {
      if (!/^\d+$/.test(k) || !isIntRow(v)) throw fail(`layer "${k}" must be an integer key with a list of expert ids`, `/initial_global_assignments/${k}`)
      if (v.length !== S) throw fail(`layer ${k} has ${v.length} slots, num_slots is ${S}`, `/initial_global_assignments/${k}`)
      return [Number(k), v] as const
    })
    entries.sort((x, y) => x[0] - y[0])
    return finish('trtllm', entries.map((e) => e[0]), needGpus('a TensorRT-LLM moe_load_balancer.yaml'), entries.map((e) => e[1]))
  }
  if ('physical_to_logical_map' in o) {
    only(['physical_to_logical_map'], 'SGLang init-expert-location')
    const m = o.physical_to_logical_map
    if (!Array.isArray(m) || !m.every(isIntRow)) throw fail('"physical_to_logical_map" must be [[logical expert per physical slot] per layer]', '/physical_to_logical_map')
    return finish('sglang', m.map((_, i) => i), needGpus('an SGLang physical_to_logical_map'), m)
  }
  if ('logical_count' in o) throw fail('holds "logical_count" (expert loads for SGLang to run EPLB on), not a placement')
  if ('layer_list' in o) {
    only(['moe_layer_count', 'layer_list'], 'vLLM expert-map')
    const list = o.layer_list
    if (!Array.isArray(list) || list.length === 0) throw fail('"layer_list" must be a non-empty list', '/layer_list')
    if (o.moe_layer_count !== undefined && o.moe_layer_count !== list.length) throw fail(`"moe_layer_count" is ${String(o.moe_layer_count)}, "layer_list" has ${list.length} layers`, '/moe_layer_count')
    let gpus = -1
    const rows = list.map((layer: unknown, i: number) => {
      const l = layer as Record<string, unknown>
      const devices = l?.device_list
      if (!Array.isArray(devices) || devices.length === 0) throw fail(`layer ${i} has no "device_list"`, `/layer_list/${i}`)
      if (l.device_count !== undefined && l.device_count !== devices.length) throw fail(`layer ${i}: "device_count" ${String(l.device_count)} but ${devices.length} devices`, `/layer_list/${i}`)
      if (gpus < 0) gpus = devices.length
      if (devices.length !== gpus) throw fail(`layer ${i} has ${devices.length} devices, layer 0 ${gpus}`, `/layer_list/${i}`)
      return devices.flatMap((d: unknown, j: number) => {
        const ex = (d as Record<string, unknown>)?.device_expert
        if (!isIntRow(ex)) throw fail(`layer ${i} device ${j}: "device_expert" must be a list of expert ids`, `/layer_list/${i}/device_list/${j}`)
        return ex
      })
    })
    return finish('vllm', rows.map((_, i) => i), gpus, rows)
  }
  if ('phy2log' in o) {
    const m = o.phy2log
    const rows = isIntRow(m) ? [m] : m
    if (!Array.isArray(rows) || !rows.every(isIntRow)) throw fail('"phy2log" must be [[expert per slot] per layer]', '/phy2log')
    const gpus = typeof o.numGpus === 'number' ? o.numGpus : needGpus('an EPLB phy2log file')
    const layers = Array.isArray(o.layers) && o.layers.length === rows.length && isIntRow(o.layers) ? o.layers : rows.map((_, i) => i)
    return finish(o.format === 'moe-route.placement/v1' ? 'moe-route' : 'eplb', layers, gpus, rows as number[][])
  }
  throw fail(`is not a placement file of a known format (keys: ${Object.keys(o).join(', ')})`)
}

/** Contiguous slot row: E experts over G GPUs (E must divide by G), expert e on GPU ⌊e·G/E⌋. */
export function contiguousRow(experts: number, gpus: number): number[] {
  if (experts % gpus !== 0) throw bad(`${experts} experts do not divide over ${gpus} devices (contiguous placement needs equal slots)`, { path: '--devices' })
  return Array.from({ length: experts }, (_, e) => e)
}

/**
 * Moves replicas so that no device holds two copies of one expert (vLLM's expert map has one
 * local slot per expert): each duplicate swaps with the slot on another device whose per-replica
 * load is closest, so device loads change as little as possible. Returns a new row and the swaps.
 */
export function spreadReplicas(row: readonly number[], gpus: number, load: ArrayLike<number>): { row: number[]; swaps: number } {
  const out = [...row]
  const per = out.length / gpus
  const cnt = new Map<number, number>()
  for (const e of out) cnt.set(e, (cnt.get(e) ?? 0) + 1)
  const w = (e: number) => load[e] / (cnt.get(e) ?? 1)
  const on = (d: number) => out.slice(d * per, (d + 1) * per)
  let swaps = 0
  for (let guard = 0; guard < out.length * out.length; guard++) {
    let dup = -1
    for (let s = 0; s < out.length && dup < 0; s++) {
      const d = Math.floor(s / per)
      if (on(d).indexOf(out[s]) !== s - d * per) dup = s
    }
    if (dup < 0) return { row: out, swaps }
    const d = Math.floor(dup / per)
    const e = out[dup]
    let best = -1
    for (let s = 0; s < out.length; s++) {
      const d2 = Math.floor(s / per)
      if (d2 === d || on(d).includes(out[s]) || on(d2).includes(e)) continue
      if (best < 0 || Math.abs(w(out[s]) - w(e)) < Math.abs(w(out[best]) - w(e))) best = s
    }
    if (best < 0) throw bad(`cannot spread the replicas of expert ${e} over distinct devices`, { path: '/phy2log' })
    ;[out[dup], out[best]] = [out[best], out[dup]]
    swaps++
  }
  throw bad('spreading replicas did not converge', { path: '/phy2log' })
}
