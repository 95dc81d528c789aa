/**
 * SGLang expert-distribution recorder dumps (`python/sglang/srt/eplb/expert_distribution.py`),
 * saved with `torch.save` and read through the restricted unpickler:
 *
 * - `stat` / `stat_approx` (`_StatAccumulator.dump`): `dict(rank, logical_count[steps, layers,
 *   experts], average_utilization_rate_over_window)` — counts only; all-zero steps are unfilled
 *   slots of the circular buffer and are skipped.
 * - `per_pass` / `per_token` (`_DetailAccumulator.dump`): `dict(records=[dict(forward_pass_id,
 *   rank, gatherer_key, global_physical_count[layers, physical], topk_ids_of_layer[layers,
 *   tokens, 8]?, input_ids?, ...)], last_physical_to_logical_map[layers, physical])`. Physical ids
 *   are mapped to logical experts with `last_physical_to_logical_map`; records with
 *   `topk_ids_of_layer` are token-level, the others counts per forward pass.
 *
 * Keys outside these layouts are refused (`MOE_ROUTE_ERR_TRACE_CORRUPT`), as are tensors whose
 * shapes disagree with each other.
 */
import { corrupt } from '../io/errors.js'
import { PyDict, TensorRef, type PyValue } from './pickle.js'
import { openTorchArchive, type TorchArchive } from './torch-archive.js'
import { MAX_INFERRED_EXPERTS, stepsFromChunks, type RecordStep, type RoutingRecord, type TokenChunk } from './record.js'
import type { RecordReadOptions } from './vllm.js'

const STAT_KEYS = new Set(['rank', 'logical_count', 'average_utilization_rate_over_window'])
const DETAIL_KEYS = new Set(['records', 'last_physical_to_logical_map'])
const PASS_KEYS = new Set([
  'forward_pass_id',
  'rank',
  'gatherer_key',
  'input_ids',
  'positions',
  'extend_seq_lens',
  'forward_mode',
  'topk_ids_of_layer',
  'misc_objects',
  'global_physical_count',
])

function checkKeys(file: string, d: PyDict, allowed: Set<string>, where: string): void {
  for (const k of d.keys()) {
    if (typeof k !== 'string' || !allowed.has(k)) {
      throw corrupt(file, where, `unknown key ${JSON.stringify(k)} (expected ${[...allowed].join(', ')}): not an SGLang expert-distribution dump this reader knows`)
    }
  }
}

function tensor(file: string, v: PyValue | undefined, where: string, dims: number): TensorRef {
  if (!(v instanceof TensorRef)) throw corrupt(file, where, 'is not a tensor')
  if (v.shape.length !== dims) throw corrupt(file, where, `has shape [${v.shape}], expected ${dims} dimensions`)
  return v
}

/** Opens an SGLang expert-distribution `.pt` dump (any recorder mode). */
export async function openSglangDump(path: string, o: RecordReadOptions = {}): Promise<RoutingRecord> {
  const archive = await openTorchArchive(path)
  try {
    const root = archive.root
    if (!(root instanceof PyDict)) throw corrupt(path, 'data.pkl', 'top-level object is not a dict: not an SGLang expert-distribution dump')
    if (root.get('logical_count') !== undefined) return await statRecord(path, archive, root, o)
    if (root.get('records') !== undefined) return await detailRecord(path, archive, root, o)
    throw corrupt(path, 'data.pkl', `has neither "logical_count" (stat mode) nor "records" (per_pass / per_token mode); keys: ${root.keys().join(', ')}`)
  } catch (e) {
    await archive.close()
    throw e
  }
}

async function statRecord(path: string, archive: TorchArchive, root: PyDict, o: RecordReadOptions): Promise<RoutingRecord> {
  checkKeys(path, root, STAT_KEYS, 'data.pkl')
  const lc = tensor(path, root.get('logical_count'), '"logical_count"', 3)
  const [S, L, E] = lc.shape
  if (L < 1 || E < 1) throw corrupt(path, '"logical_count"', `has shape [${lc.shape}]: no layer or no expert`)
  if (E > MAX_INFERRED_EXPERTS) throw corrupt(path, '"logical_count"', `has ${E} experts, more than the largest supported (${MAX_INFERRED_EXPERTS})`)
  if (o.experts !== undefined && o.experts !== E) throw corrupt(path, '"logical_count"', `has ${E} experts in its last axis, expected ${o.experts}`)
  const util = root.get('average_utilization_rate_over_window')
  if (util !== undefined && util !== null && typeof util !== 'number') throw corrupt(path, '"average_utilization_rate_over_window"', 'is not a number or None')
  const rank = root.get('rank')
  if (rank !== undefined && (typeof rank !== 'number' || !Number.isInteger(rank))) throw corrupt(path, '"rank"', 'is not an integer')
  const steps = async function* (): AsyncGenerator<RecordStep> {
    let index = 0
    for (let s = 0; s < S; s++) {
      const ids = await archive.readInts(lc, s * L * E, L * E, `"logical_count" step ${s}`)
      let total = 0
      const counts = Array.from({ length: L }, (_, l) => {
        const row = new Float64Array(E)
        for (let e = 0; e < E; e++) {
          const v = ids[l * E + e]
          if (v < 0) throw corrupt(path, `"logical_count" step ${s}, layer ${l}, expert ${e}`, `count ${v} is negative`)
          row[e] = v
          total += v
        }
        return row
      })
      if (total > 0) yield { index: index++, tokens: null, counts }
    }
  }
  return {
    file: path,
    format: 'sglang-stat',
    engine: 'sglang',
    kind: 'counts',
    layers: Array.from({ length: L }, (_, i) => i),
    experts: E,
    topK: null,
    tokens: null,
    recordedSteps: S,
    ranks: 1,
    meta: { rank: typeof rank === 'number' ? rank : null, averageUtilizationRateOverWindow: typeof util === 'number' ? util : null },
    steps,
    chunks: () => {
      throw corrupt(path, 'data.pkl', 'is an SGLang stat-mode dump: it holds expert counts per step, not per-token expert ids (record with --expert-distribution-recorder-mode per_token for that)')
    },
    close: () => archive.close(),
  }
}

async function detailRecord(path: string, archive: TorchArchive, root: PyDict, o: RecordReadOptions): Promise<RoutingRecord> {
  checkKeys(path, root, DETAIL_KEYS, 'data.pkl')
  const records = root.get('records')
  if (!Array.isArray(records) || records.length === 0) throw corrupt(path, '"records"', 'is not a non-empty list of forward passes')
  const map = tensor(path, root.get('last_physical_to_logical_map'), '"last_physical_to_logical_map"', 2)
  const [L, P] = map.shape
  if (L < 1 || P < 1) throw corrupt(path, '"last_physical_to_logical_map"', `has shape [${map.shape}]`)
  const p2l = await archive.readInts(map, 0, L * P, '"last_physical_to_logical_map"')
  let maxLogical = -1
  for (let i = 0; i < p2l.length; i++) {
    if (p2l[i] < 0 || p2l[i] >= P) throw corrupt(path, `"last_physical_to_logical_map" layer ${Math.floor(i / P)}, slot ${i % P}`, `logical expert ${p2l[i]} is outside 0..${P - 1}`)
    maxLogical = Math.max(maxLogical, p2l[i])
  }
  const E = o.experts ?? maxLogical + 1
  if (E < maxLogical + 1) throw corrupt(path, '"last_physical_to_logical_map"', `maps to logical expert ${maxLogical}, but experts is ${E}`)
  const passes = records.map((r, i) => {
    const where = `"records"[${i}]`
    if (!(r instanceof PyDict)) throw corrupt(path, where, 'is not a dict')
    checkKeys(path, r, PASS_KEYS, where)
    const ids = r.get('topk_ids_of_layer')
    const count = r.get('global_physical_count')
    if (ids !== undefined) {
      const t = tensor(path, ids, `${where}."topk_ids_of_layer"`, 3)
      if (t.shape[0] !== L) throw corrupt(path, `${where}."topk_ids_of_layer"`, `has ${t.shape[0]} layers, the physical-to-logical map ${L}`)
      const inputIds = r.get('input_ids')
      if (Array.isArray(inputIds) && inputIds.length !== t.shape[1]) throw corrupt(path, `${where}."topk_ids_of_layer"`, `has ${t.shape[1]} tokens, "input_ids" ${inputIds.length}`)
      return { where, ids: t, count: null }
    }
    const c = tensor(path, count, `${where}."global_physical_count"`, 2)
    if (c.shape[0] !== L || c.shape[1] !== P) throw corrupt(path, `${where}."global_physical_count"`, `has shape [${c.shape}], the physical-to-logical map [${L}, ${P}]`)
    return { where, ids: null, count: c }
  })
  const tokenLevel = passes.every((p) => p.ids)
  if (!tokenLevel && passes.some((p) => p.ids)) throw corrupt(path, '"records"', 'mixes per-token and per-pass records')
  const toLogical = (physical: number, layer: number, where: () => string): number => {
    if (physical < 0 || physical >= P) throw corrupt(path, where(), `physical expert ${physical} is outside 0..${P - 1}`)
    return p2l[layer * P + physical]
  }
  if (!tokenLevel) {
    const steps = async function* (): AsyncGenerator<RecordStep> {
      for (let s = 0; s < passes.length; s++) {
        const p = passes[s]
        const raw = await archive.readInts(p.count!, 0, L * P, `${p.where}."global_physical_count"`)
        const counts = Array.from({ length: L }, () => new Float64Array(E))
        for (let l = 0; l < L; l++) {
          for (let q = 0; q < P; q++) {
            const v = raw[l * P + q]
            if (v < 0) throw corrupt(path, `${p.where}."global_physical_count" layer ${l}, slot ${q}`, `count ${v} is negative`)
            counts[l][p2l[l * P + q]] += v
          }
        }
        yield { index: s, tokens: null, counts }
      }
    }
    return base(path, 'sglang-per-pass', 'counts', L, E, null, null, passes.length, archive, steps, () => {
      throw corrupt(path, '"records"', 'are per-pass counts (per_pass mode), not per-token expert ids (record with per_token mode for that)')
    })
  }
  // Token level: slots beyond the model's k are −1 (SGLang pads to 8); k = widest used slot + 1.
  const slots = passes[0].ids!.shape[2]
  let k = 0
  let T = 0
  for (const p of passes) {
    const [, n, w] = p.ids!.shape
    if (w !== slots) throw corrupt(path, `${p.where}."topk_ids_of_layer"`, `has ${w} slots, the first record ${slots}`)
    T += n
  }
  {
    const p = passes[0]
    const raw = await archive.readInts(p.ids!, 0, p.ids!.numel, `${p.where}."topk_ids_of_layer"`)
    for (let i = 0; i < raw.length; i++) if (raw[i] !== -1) k = Math.max(k, (i % slots) + 1)
    if (k === 0) throw corrupt(path, `${p.where}."topk_ids_of_layer"`, 'holds no expert id')
  }
  const chunks = async function* (): AsyncGenerator<TokenChunk> {
    let start = 0
    for (const p of passes) {
      const [, n] = p.ids!.shape
      const raw = await archive.readInts(p.ids!, 0, L * n * slots, `${p.where}."topk_ids_of_layer"`)
      const ids = new Int32Array(n * L * k)
      for (let l = 0; l < L; l++) {
        for (let t = 0; t < n; t++) {
          for (let j = 0; j < slots; j++) {
            const v = raw[(l * n + t) * slots + j]
            if (j >= k) {
              if (v !== -1) throw corrupt(path, `${p.where}."topk_ids_of_layer" layer ${l}, token ${t}`, `slot ${j} is used, the first record uses ${k}`)
              continue
            }
            ids[(t * L + l) * k + j] = v === -1 ? -1 : toLogical(v, l, () => `${p.where}."topk_ids_of_layer" layer ${l}, token ${t}, slot ${j}`)
          }
        }
      }
      yield { start, tokens: n, ids }
      start += n
    }
  }
  return base(path, 'sglang-per-token', 'tokens', L, E, k, T, null, archive, (s = {}) => stepsFromChunks(chunks(), L, k, E, s.tokensPerStep), chunks)
}

function base(
  file: string,
  format: 'sglang-per-pass' | 'sglang-per-token',
  kind: 'tokens' | 'counts',
  L: number,
  E: number,
  topK: number | null,
  tokens: number | null,
  recordedSteps: number | null,
  archive: TorchArchive,
  steps: RoutingRecord['steps'],
  chunks: RoutingRecord['chunks'],
): RoutingRecord {
  return {
    file,
    format,
    engine: 'sglang',
    kind,
    layers: Array.from({ length: L }, (_, i) => i),
    experts: E,
    topK,
    tokens,
    recordedSteps,
    ranks: 1,
    meta: {},
    steps,
    chunks,
    close: () => archive.close(),
  }
}
