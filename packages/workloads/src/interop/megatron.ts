/**
 * Megatron-core router traces (`megatron/core/transformer/moe/router_trace.py`, enabled with
 * `--moe-routing-trace-path`): one `router_trace_rank{r}.jsonl` per rank, one record per
 * (step, block, layer): `{"step", "stage", "block", "layer", "rank", "num_tokens", "topk",
 * "top_indices": [[...], ...]}` (plus optional sidecar offsets). Decoder records become a
 * token-level record whose tokens are each step's tokens, rank by rank; MTP records
 * (`"block": "mtp"`) are skipped (their layer numbers overlap the decoder's) and counted in `meta`.
 */
import { createInterface } from 'node:readline'
import { readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { corrupt, notFound } from '../io/errors.js'
import { openForRead } from '../io/file.js'
import { MAX_INFERRED_EXPERTS, stepsFromChunks, type RoutingRecord, type TokenChunk } from './record.js'
import type { RecordReadOptions } from './vllm.js'

const KEYS = new Set(['step', 'stage', 'block', 'layer', 'rank', 'num_tokens', 'topk', 'top_indices', 'mtp_idx', 'hs_offset', 'hs_bytes', 'hs_shape', 'logit_offset', 'logit_bytes', 'logit_shape'])

interface TraceLine {
  line: number
  step: number
  layer: number
  rank: number
  tokens: number
  topk: number
  ids: number[][]
}

/** The rank files of a path: the file itself, or a directory's `router_trace_rank*.jsonl` in rank order. */
export async function megatronTraceFiles(path: string): Promise<{ file: string; rank: number | null }[]> {
  let isDir: boolean
  try {
    isDir = (await stat(path)).isDirectory()
  } catch (cause) {
    throw notFound(path, cause)
  }
  if (!isDir) {
    const m = /router_trace_rank(\d+)\.jsonl$/.exec(path)
    return [{ file: path, rank: m ? Number(m[1]) : null }]
  }
  const files = (await readdir(path)).filter((f) => /^router_trace_rank\d+\.jsonl$/.test(f))
  if (files.length === 0) throw corrupt(path, 'rank files', 'has no router_trace_rank{r}.jsonl')
  const out = files.map((f) => ({ file: join(path, f), rank: Number(/(\d+)\.jsonl$/.exec(f)![1]) })).sort((a, b) => a.rank - b.rank)
  out.forEach((f, i) => {
    if (f.rank !== i) throw corrupt(path, 'rank files', `ranks are ${out.map((x) => x.rank).join(', ')}: rank ${i} is missing`)
  })
  return out
}

async function* readLines(file: string, rank: number | null, skipped: { mtp: number }): AsyncGenerator<TraceLine> {
  const { handle } = await openForRead(file)
  const stream = handle.createReadStream({ autoClose: false, highWaterMark: 1 << 16 })
  const lines = createInterface({ input: stream, crlfDelay: Infinity })
  let n = 0
  try {
    for await (const text of lines) {
      n++
      if (text.trim() === '') continue
      const where = `line ${n}`
      let v: unknown
      try {
        v = JSON.parse(text)
      } catch (cause) {
        throw corrupt(file, where, `not valid JSON (${(cause as Error).message}; truncated line?)`, cause)
      }
      if (typeof v !== 'object' || v === null || Array.isArray(v)) throw corrupt(file, where, 'record is not a JSON object')
      const r = v as Record<string, unknown>
      for (const k of Object.keys(r)) if (!KEYS.has(k)) throw corrupt(file, where, `unknown key "${k}": not a Megatron router trace record`)
      if (r.block === 'mtp') {
        skipped.mtp++
        continue
      }
      if (r.block !== undefined && r.block !== 'decoder') throw corrupt(file, where, `"block" must be "decoder" or "mtp", got ${JSON.stringify(r.block)}`)
      const int = (k: string, min = 0) => {
        const x = r[k]
        if (!Number.isSafeInteger(x) || (x as number) < min) throw corrupt(file, where, `"${k}" must be an integer ≥ ${min}, got ${JSON.stringify(x)}`)
        return x as number
      }
      const step = int('step')
      const layer = int('layer')
      const recRank = int('rank')
      const tokens = int('num_tokens')
      const topk = int('topk', 1)
      if (rank !== null && recRank !== rank) throw corrupt(file, where, `"rank" is ${recRank} in the file of rank ${rank} (mismatched ranks)`)
      const ids = r.top_indices
      if (!Array.isArray(ids) || ids.length !== tokens) throw corrupt(file, where, `"top_indices" must be ${tokens} rows (num_tokens), got ${Array.isArray(ids) ? ids.length : JSON.stringify(ids)}`)
      for (let t = 0; t < ids.length; t++) {
        const row = ids[t]
        if (!Array.isArray(row) || row.length !== topk) throw corrupt(file, where, `"top_indices"[${t}] must have ${topk} ids (topk)`)
        for (const e of row) if (!Number.isSafeInteger(e) || (e as number) < 0) throw corrupt(file, where, `"top_indices"[${t}] holds ${JSON.stringify(e)}, not an expert id`)
      }
      yield { line: n, step, layer, rank: recRank, tokens, topk, ids: ids as number[][] }
    }
  } finally {
    lines.close()
    stream.destroy()
    await handle.close()
  }
}

/** Groups consecutive lines of one step; a step must hold every layer once, with one token count. */
async function* stepGroups(file: string, lines: AsyncIterable<TraceLine>, layers: readonly number[] | null): AsyncGenerator<TraceLine[]> {
  let group: TraceLine[] = []
  const check = (g: TraceLine[]) => {
    if (!layers) return
    const seen = new Set(g.map((x) => x.layer))
    if (g.length !== layers.length || layers.some((l) => !seen.has(l))) {
      throw corrupt(file, `step ${g[0].step} (line ${g[0].line})`, `has layers ${[...seen].join(', ')}, the trace has ${layers.join(', ')}`)
    }
    if (g.some((x) => x.tokens !== g[0].tokens)) throw corrupt(file, `step ${g[0].step} (line ${g[0].line})`, 'layers disagree on num_tokens')
  }
  for await (const l of lines) {
    if (group.length && (l.step !== group[0].step || group.some((x) => x.layer === l.layer))) {
      check(group)
      yield group
      group = []
    }
    group.push(l)
  }
  if (group.length) {
    check(group)
    yield group
  }
}

/** Opens Megatron-core router traces: one rank file or a directory of them. */
export async function openMegatronTrace(path: string, o: RecordReadOptions = {}): Promise<RoutingRecord> {
  const files = await megatronTraceFiles(path)
  // Pass 1: layers, k, E, tokens.
  const layerSet = new Set<number>()
  let k: number | null = null
  let max = -1
  let T = 0
  const skipped = { mtp: 0 }
  for (const f of files) {
    let fileLayers: Set<number> | null = null
    for await (const g of stepGroups(f.file, readLines(f.file, f.rank, skipped), null)) {
      const ls = new Set(g.map((x) => x.layer))
      if (!fileLayers) fileLayers = ls
      for (const x of g) {
        layerSet.add(x.layer)
        if (k === null) k = x.topk
        if (x.topk !== k) throw corrupt(f.file, `line ${x.line}`, `"topk" is ${x.topk}, earlier records ${k}`)
        for (const row of x.ids) for (const e of row) max = Math.max(max, e)
      }
      T += g[0].tokens
    }
    if (max >= (o.experts ?? MAX_INFERRED_EXPERTS)) throw corrupt(f.file, 'top_indices', `expert id ${max} is out of range: the record has ${o.experts ?? MAX_INFERRED_EXPERTS} experts`)
  }
  if (k === null || layerSet.size === 0) throw corrupt(path, 'records', 'holds no decoder router record')
  const layers = [...layerSet].sort((a, b) => a - b)
  const L = layers.length
  const topK = k
  const E = o.experts ?? max + 1
  const chunks = async function* (): AsyncGenerator<TokenChunk> {
    let start = 0
    for (const f of files) {
      for await (const g of stepGroups(f.file, readLines(f.file, f.rank, { mtp: 0 }), layers)) {
        const n = g[0].tokens
        const ids = new Int32Array(n * L * topK)
        for (const x of g) {
          const i = layers.indexOf(x.layer)
          for (let t = 0; t < n; t++) {
            const row = x.ids[t]
            for (let j = 0; j < topK; j++) {
              if (row[j] >= E) throw corrupt(f.file, `line ${x.line}`, `expert id ${row[j]} is out of range: the record has ${E} experts`)
              ids[(t * L + i) * topK + j] = row[j]
            }
          }
        }
        yield { start, tokens: n, ids }
        start += n
      }
    }
  }
  return {
    file: path,
    format: 'megatron-jsonl',
    engine: 'megatron',
    kind: 'tokens',
    layers,
    experts: E,
    topK,
    tokens: T,
    recordedSteps: null,
    ranks: files.length,
    meta: { mtpRecordsSkipped: skipped.mtp },
    chunks,
    steps: (s = {}) => stepsFromChunks(chunks(), L, topK, E, s.tokensPerStep),
    close: async () => {},
  }
}
