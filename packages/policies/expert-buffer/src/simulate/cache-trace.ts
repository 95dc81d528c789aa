/**
 * Cache traces: the sequence of per-batch active expert sets the cache simulator replays.
 * A batch's experts execute in increasing id order on each device (Expert Buffering's model),
 * so a batch is a *set*; order within it and duplicates do not matter.
 */
import { StoreErrorCodes, checkExpert, storeError } from '../errors.js'

/** The experts one batch of one layer needs. */
export interface CacheTraceBatch {
  /** Expert ids with at least one token in the batch (any order; duplicates ignored). */
  readonly active: readonly number[]
  /** MoE layer (each layer has its own cache per device); default 0. */
  readonly layer?: number
  /** Tokens in the batch (informational). */
  readonly tokens?: number
}

/** A routing trace reduced to active sets, in execution order. */
export interface CacheTrace {
  /** Experts per layer E. */
  readonly experts: number
  readonly batches: readonly CacheTraceBatch[]
  /** Label for tables and plots. */
  readonly name?: string
}

/** A trace whose batches are validated, deduplicated and sorted ascending. */
export interface NormalizedTrace {
  readonly experts: number
  readonly name?: string
  readonly batches: readonly { readonly active: readonly number[]; readonly layer: number; readonly tokens?: number }[]
  /** Layers present, ascending. */
  readonly layers: readonly number[]
}

/**
 * Validates a trace: E is a positive integer, every batch has an `active` array of expert ids
 * in 0 … E-1 (else STORE_EXPERT_UNKNOWN naming the batch) and an integer layer ≥ 0.
 */
export function normalizeTrace(trace: CacheTrace): NormalizedTrace {
  if (typeof trace !== 'object' || trace === null || !Array.isArray(trace.batches)) {
    throw storeError(StoreErrorCodes.STORE_TRACE_INVALID, 'a cache trace is { experts, batches: [{ active: [...] }, ...] }')
  }
  const E = trace.experts
  if (!Number.isInteger(E) || E < 1) {
    throw storeError(StoreErrorCodes.STORE_TRACE_INVALID, `trace.experts must be a positive integer, got ${String(E)}`, { path: 'experts' })
  }
  const layers = new Set<number>()
  const batches = trace.batches.map((b: CacheTraceBatch, i: number) => {
    if (!b || !Array.isArray(b.active)) {
      throw storeError(StoreErrorCodes.STORE_TRACE_INVALID, `batch ${i}: 'active' must be an array of expert ids`, { record: i })
    }
    const layer = b.layer ?? 0
    if (!Number.isInteger(layer) || layer < 0) {
      throw storeError(StoreErrorCodes.STORE_TRACE_INVALID, `batch ${i}: layer must be an integer ≥ 0, got ${String(layer)}`, { record: i })
    }
    for (const e of b.active) checkExpert(e, E, `batch ${i}`)
    layers.add(layer)
    const active = [...new Set<number>(b.active)].sort((x, y) => x - y)
    return b.tokens === undefined ? { active, layer } : { active, layer, tokens: b.tokens }
  })
  return { experts: E, ...(trace.name ? { name: trace.name } : {}), batches, layers: [...layers].sort((a, b) => a - b) }
}

/** One routed token as a JSONL trace holds it (the fields the cache needs). */
export interface RoutedTokenRecord {
  readonly layer: number
  readonly token: number
  readonly experts: readonly number[]
}

/** Options of {@link batchRecords}. */
export interface BatchRecordsOptions {
  /** Experts per layer E. */
  readonly experts: number
  /** Tokens per batch (default 512). A trailing partial batch is kept. */
  readonly batch?: number
  readonly name?: string
}

/**
 * Groups per-token routing records into batches of `batch` consecutive tokens per layer and
 * returns the trace in forward-pass order (batch 0 of every layer, then batch 1, ...).
 * Tokens keep the order they appear in per layer.
 * @example
 * const trace = batchRecords(await Array.fromAsync(readJsonlTrace('t.jsonl', { experts: 8 })), { experts: 8, batch: 1 })
 */
export function batchRecords(records: Iterable<RoutedTokenRecord>, options: BatchRecordsOptions): CacheTrace {
  const size = options.batch ?? 512
  if (!Number.isInteger(size) || size < 1) {
    throw storeError(StoreErrorCodes.STORE_TRACE_INVALID, `batch must be a positive integer, got ${String(size)}`, { path: 'batch' })
  }
  const perLayer = new Map<number, { sets: Set<number>[]; tokens: number[]; inBatch: number }>()
  let n = 0
  for (const r of records) {
    for (const e of r.experts) checkExpert(e, options.experts, `record ${n} (layer ${r.layer}, token ${r.token})`)
    n++
    let l = perLayer.get(r.layer)
    if (!l) perLayer.set(r.layer, (l = { sets: [], tokens: [], inBatch: size }))
    if (l.inBatch === size) {
      l.sets.push(new Set())
      l.tokens.push(0)
      l.inBatch = 0
    }
    const set = l.sets[l.sets.length - 1]!
    for (const e of r.experts) set.add(e)
    l.tokens[l.tokens.length - 1]!++
    l.inBatch++
  }
  const layers = [...perLayer.keys()].sort((a, b) => a - b)
  const rounds = Math.max(0, ...layers.map((l) => perLayer.get(l)!.sets.length))
  const batches: CacheTraceBatch[] = []
  for (let b = 0; b < rounds; b++) {
    for (const layer of layers) {
      const l = perLayer.get(layer)!
      const set = l.sets[b]
      if (set) batches.push({ layer, tokens: l.tokens[b]!, active: [...set].sort((x, y) => x - y) })
    }
  }
  return { experts: options.experts, batches, ...(options.name ? { name: options.name } : {}) }
}
