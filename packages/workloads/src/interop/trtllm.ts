/**
 * TensorRT-LLM wide-EP load-balancer statistics (`examples/wide_ep/ep_load_balancer/utils.py`,
 * `load_expert_statistic`): a directory with `meta_info.json` (`num_experts`,
 * `num_experts_per_token`) and one `rank{r}.safetensors` per rank whose tensors are named
 * `"{iteration}_{layer}"`, each an integer `[num_experts]` token count. Ranks are summed, as the
 * engine's own script does; `rank*_raw.safetensors` files are ignored like there. Counts only.
 */
import { readdir, readFile, stat } from 'node:fs/promises'
import { basename, dirname, join } from 'node:path'
import { corrupt, notFound } from '../io/errors.js'
import { openSafetensors, type SafetensorsFile } from '../safetensors/safetensors.js'
import { MAX_INFERRED_EXPERTS, type RecordStep, type RoutingRecord } from './record.js'
import type { RecordReadOptions } from './vllm.js'

const META_KEYS = new Set(['num_experts', 'num_experts_per_token'])

/** The statistics directory of a path: the directory itself, or the folder of its `meta_info.json`. */
export async function trtllmStatsDir(path: string): Promise<string> {
  try {
    return (await stat(path)).isDirectory() ? path : dirname(path)
  } catch (cause) {
    throw notFound(path, cause)
  }
}

/** Opens TensorRT-LLM expert statistics (a directory, or its `meta_info.json`). */
export async function openTrtllmStats(path: string, o: RecordReadOptions = {}): Promise<RoutingRecord> {
  const dir = await trtllmStatsDir(path)
  const metaPath = join(dir, 'meta_info.json')
  let metaText: string
  try {
    metaText = await readFile(metaPath, 'utf8')
  } catch (cause) {
    throw notFound(metaPath, cause)
  }
  let meta: unknown
  try {
    meta = JSON.parse(metaText)
  } catch (cause) {
    throw corrupt(metaPath, 'JSON', `not valid JSON: ${(cause as Error).message}`, cause)
  }
  if (typeof meta !== 'object' || meta === null || Array.isArray(meta)) throw corrupt(metaPath, 'JSON', 'is not an object')
  for (const k of Object.keys(meta)) if (!META_KEYS.has(k)) throw corrupt(metaPath, `key "${k}"`, `is unknown (expected ${[...META_KEYS].join(', ')})`)
  const { num_experts: E, num_experts_per_token: k } = meta as Record<string, unknown>
  if (!Number.isSafeInteger(E) || (E as number) < 1) throw corrupt(metaPath, '"num_experts"', `must be a positive integer, got ${JSON.stringify(E)}`)
  if ((E as number) > MAX_INFERRED_EXPERTS) throw corrupt(metaPath, '"num_experts"', `is ${E}, more than the largest supported number of experts (${MAX_INFERRED_EXPERTS})`)
  if (!Number.isSafeInteger(k) || (k as number) < 1 || (k as number) > (E as number)) throw corrupt(metaPath, '"num_experts_per_token"', `must be an integer in 1..num_experts, got ${JSON.stringify(k)}`)
  const experts = E as number
  const topK = k as number
  if (o.experts !== undefined && o.experts !== experts) throw corrupt(metaPath, '"num_experts"', `is ${experts}, expected ${o.experts}`)
  const rankFiles = (await readdir(dir)).filter((f) => /^rank\d+\.safetensors$/.test(f))
  if (rankFiles.length === 0) throw corrupt(dir, 'rank files', 'has no rank{r}.safetensors')
  const ranks = rankFiles.map((f) => Number(/^rank(\d+)/.exec(f)![1])).sort((a, b) => a - b)
  ranks.forEach((r, i) => {
    if (r !== i) throw corrupt(dir, 'rank files', `ranks are ${ranks.join(', ')}: rank ${i} is missing (ranks must be 0..n-1)`)
  })
  const files: SafetensorsFile[] = []
  try {
    for (const r of ranks) files.push(await openSafetensors(join(dir, `rank${r}.safetensors`)))
    const keyOf = (f: SafetensorsFile, name: string) => {
      const m = /^(\d+)_(\d+)$/.exec(name)
      if (!m) throw corrupt(f.path, `tensor "${name}"`, 'is not named "{iteration}_{layer}"')
      return { iter: Number(m[1]), layer: Number(m[2]) }
    }
    const first = files[0]
    const names = [...first.names].sort()
    for (const f of files) {
      const own = [...f.names].sort()
      if (own.length !== names.length || own.some((n, i) => n !== names[i])) {
        throw corrupt(f.path, 'tensors', `hold iterations/layers that differ from ${basename(first.path)} (mismatched ranks: ${own.length} tensors vs ${names.length})`)
      }
      for (const name of own) {
        keyOf(f, name)
        const t = f.info(name)
        if (t.shape.length !== 1 || t.shape[0] !== experts) throw corrupt(f.path, `tensor "${name}"`, `has shape [${t.shape}], expected [${experts}] (num_experts)`)
        if (/^F|^BF/.test(t.dtype)) throw corrupt(f.path, `tensor "${name}"`, `dtype ${t.dtype} is not an integer count`)
      }
    }
    const keys = names.map((n) => ({ name: n, ...keyOf(first, n) }))
    const iters = [...new Set(keys.map((x) => x.iter))].sort((a, b) => a - b)
    const layers = [...new Set(keys.map((x) => x.layer))].sort((a, b) => a - b)
    if (keys.length !== iters.length * layers.length) throw corrupt(first.path, 'tensors', `${keys.length} tensors do not cover ${iters.length} iterations × ${layers.length} layers`)
    if (iters.length && iters[iters.length - 1] + 1 - iters[0] !== iters.length) throw corrupt(first.path, 'tensors', `iterations ${iters[0]}..${iters[iters.length - 1]} are not contiguous`)
    const steps = async function* (): AsyncGenerator<RecordStep> {
      for (let s = 0; s < iters.length; s++) {
        const counts = layers.map(() => new Float64Array(experts))
        for (let i = 0; i < layers.length; i++) {
          const name = `${iters[s]}_${layers[i]}`
          for (const f of files) {
            const v = await f.readInts(name, 0, experts)
            for (let e = 0; e < experts; e++) {
              if (v[e] < 0) throw corrupt(f.path, `tensor "${name}" expert ${e}`, `count ${v[e]} is negative`)
              counts[i][e] += v[e]
            }
          }
        }
        let pairs = 0
        for (const c of counts[0]) pairs += c
        yield { index: s, tokens: pairs % topK === 0 ? pairs / topK : null, counts }
      }
    }
    return {
      file: dir,
      format: 'trtllm-stats',
      engine: 'trtllm',
      kind: 'counts',
      layers,
      experts,
      topK,
      tokens: null,
      recordedSteps: iters.length,
      ranks: files.length,
      meta: { iterStart: iters[0] ?? null, iterStop: iters.length ? iters[iters.length - 1] + 1 : null },
      steps,
      chunks: () => {
        throw corrupt(dir, 'rank files', 'TensorRT-LLM statistics hold expert counts per iteration, not per-token expert ids')
      },
      close: async () => {
        for (const f of files) await f.close()
      },
    }
  } catch (e) {
    for (const f of files) await f.close()
    throw e
  }
}
