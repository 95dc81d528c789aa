/**
 * Traces as streams of core `TokenBatch`es for one layer, and their load statistics.
 * JSONL routing records become batches whose synthesized `scores` have the recorded experts as
 * their top-k (see gate-scores.ts); `.npy` and safetensors logits (or scores) are passed
 * through as `logits` (or `scores`). Every reader streams: memory is one batch.
 */
import { ErrorCodes, MAX_EXPERTS, MoeError, mixSeed, mulberry32, topKIndices, type TokenBatch } from '@moe-route/core'
import { synthesizeScores, type GateScoreOptions } from '../generators/gate-scores.js'
import { corrupt, invalid } from '../io/errors.js'
import { inspectJsonlTrace, readJsonlTrace, type TraceRecord } from '../jsonl/jsonl.js'
import { openNpy } from '../npy/npy.js'
import { openSafetensors } from '../safetensors/safetensors.js'
import { LoadAccumulator, DEFAULT_STAT_BATCH_SIZES, type LoadStats } from '../stats/load-stats.js'

/** Trace file formats. */
export type TraceFormat = 'jsonl' | 'npy' | 'safetensors'

/** How to read a trace. */
export interface TraceReadOptions {
  /** Format; default from the extension (`.jsonl`/`.ndjson`, `.npy`, `.safetensors`). */
  readonly format?: TraceFormat
  /** Number of experts E. JSONL: ids ≥ E are corrupt; without it, one extra pass finds max id + 1. Tensors: must equal the last axis. */
  readonly experts?: number
  /** Experts per token k. JSONL: every record must have k (default: the first record's count). Tensors: needed for statistics. */
  readonly topK?: number
  /** JSONL: the layer to read (default: the first record's layer). Tensors of shape [L × T × E]: the index along L (default 0). */
  readonly layer?: number
  /** Safetensors: the tensor to read (default: the only tensor). */
  readonly tensor?: string
  /** Tensors hold router `logits` (default) or probabilities (`scores`). */
  readonly values?: 'logits' | 'scores'
}

/** How to batch a trace. */
export interface TraceBatchOptions extends TraceReadOptions {
  readonly tokensPerBatch: number
  /** Stop after this many batches. */
  readonly batches?: number
  /** Stop after this many tokens. */
  readonly tokens?: number
  /** Seed of synthesized gate scores (JSONL only; default 0). */
  readonly seed?: number
  readonly gate?: GateScoreOptions
  /** Id of the first batch (default 0). */
  readonly firstBatchId?: number
}

/** The format of a trace path by its extension; throws `MOE_ROUTE_ERR_INPUT_INVALID` for others. */
export function traceFormatOf(path: string): TraceFormat {
  const lower = path.toLowerCase()
  if (lower.endsWith('.jsonl') || lower.endsWith('.ndjson')) return 'jsonl'
  if (lower.endsWith('.npy')) return 'npy'
  if (lower.endsWith('.safetensors')) return 'safetensors'
  throw invalid(`cannot tell the trace format of ${path} (use .jsonl, .ndjson, .npy or .safetensors, or pass format)`, { file: path })
}

function checkBatching(o: TraceBatchOptions): void {
  if (!Number.isInteger(o.tokensPerBatch) || o.tokensPerBatch < 1) throw invalid(`tokensPerBatch must be a positive integer, got ${o.tokensPerBatch}`, { path: 'tokensPerBatch' })
}

/**
 * Streams a trace file as batches of `tokensPerBatch` tokens for one layer.
 *
 * @example
 * for await (const batch of traceBatches('routing.jsonl', { experts: 8, layer: 7, tokensPerBatch: 512 })) {
 *   const result = engine.process(batch)
 * }
 */
export async function* traceBatches(path: string, options: TraceBatchOptions): AsyncGenerator<TokenBatch> {
  checkBatching(options)
  const format = options.format ?? traceFormatOf(path)
  if (format === 'jsonl') {
    const experts = options.experts ?? (await inspectJsonlTrace(path)).minExperts
    yield* recordsToBatches(readJsonlTrace(path, { experts, topK: options.topK }), { ...options, experts, file: path })
    return
  }
  yield* tensorBatches(path, format, options)
}

/** Options of {@link recordsToBatches}. */
export interface RecordsToBatchesOptions extends Omit<TraceBatchOptions, 'format' | 'tensor' | 'values'> {
  readonly experts: number
  /** Name used in errors (default `records`). */
  readonly file?: string
}

/**
 * Groups trace records of one layer into batches with synthesized gate scores whose top-k in
 * slot order are the recorded experts (and whose renormalised top-k equal recorded weights).
 */
export async function* recordsToBatches(
  records: Iterable<TraceRecord> | AsyncIterable<TraceRecord>,
  options: RecordsToBatchesOptions,
): AsyncGenerator<TokenBatch> {
  checkBatching(options)
  const { experts, tokensPerBatch } = options
  const file = options.file ?? 'records'
  const random = mulberry32(mixSeed(options.seed ?? 0, 0x736330))
  let layer = options.layer
  let k = options.topK
  let ids: number[] = []
  let weights: number[] = []
  let produced = 0
  let batchNo = 0
  let n = 0
  const flush = (): TokenBatch => {
    const expertIds = Int32Array.from(ids)
    const scores = synthesizeScores(n, experts, k as number, expertIds, random, Float32Array.from(weights), options.gate)
    const batch = { id: (options.firstBatchId ?? 0) + batchNo++, tokens: n, scores }
    produced += n
    ids = []
    weights = []
    n = 0
    return batch
  }
  const batchesDone = () => options.batches !== undefined && batchNo >= options.batches
  const tokensDone = () => options.tokens !== undefined && produced + n >= options.tokens
  if (batchesDone() || tokensDone()) return
  let index = 0
  for await (const r of records) {
    index++
    if (batchesDone()) return
    if (layer === undefined) layer = r.layer
    if (r.layer !== layer) continue
    if (k === undefined) k = r.experts.length
    if (r.experts.length !== k) throw corrupt(file, `record ${index} (token ${r.token})`, `has ${r.experts.length} experts, expected ${k} like the others`)
    for (let j = 0; j < k; j++) {
      const e = r.experts[j]
      if (!Number.isInteger(e) || e < 0 || e >= experts) throw corrupt(file, `record ${index} (token ${r.token})`, `expert id ${e} is out of range 0..${experts - 1}`)
      ids.push(e)
      weights.push(r.weights ? r.weights[j] : NaN)
    }
    n++
    const stop = tokensDone()
    if (n === tokensPerBatch || stop) yield flush()
    if (stop) return
  }
  if (n > 0) yield flush()
}

interface TensorSource {
  rows: number
  experts: number
  read(start: number, count: number): Promise<Float32Array>
  close(): Promise<void>
}

async function openTensorSource(path: string, format: 'npy' | 'safetensors', o: TraceReadOptions): Promise<TensorSource> {
  const layer = o.layer ?? 0
  const shapeOf = (shape: readonly number[], what: string) => {
    const experts = shape[shape.length - 1]
    // the last axis sizes per-expert arrays: never trusted (an empty tensor may claim any width)
    if (shape.length >= 2 && (experts < 1 || experts > MAX_EXPERTS)) {
      throw corrupt(path, what, `shape [${shape}] has ${experts} experts in its last axis; 1..${MAX_EXPERTS} are supported`)
    }
    if (shape.length === 2) return { base: 0, rows: shape[0], experts }
    if (shape.length === 3) {
      if (!Number.isInteger(layer) || layer < 0 || layer >= shape[0]) throw invalid(`layer ${layer} is outside ${what} of shape [${shape}]`, { file: path })
      return { base: layer * shape[1] * shape[2], rows: shape[1], experts }
    }
    throw corrupt(path, what, `shape [${shape}] is not [tokens × experts] or [layers × tokens × experts]`)
  }
  if (format === 'npy') {
    const npy = await openNpy(path)
    try {
      const s = shapeOf(npy.shape, 'array')
      return { rows: s.rows, experts: s.experts, read: (start, count) => npy.readElements(s.base + start * s.experts, count * s.experts), close: () => npy.close() }
    } catch (e) {
      await npy.close()
      throw e
    }
  }
  const st = await openSafetensors(path)
  try {
    let name = o.tensor
    if (name === undefined) {
      if (st.names.length !== 1) throw invalid(`${path} has ${st.names.length} tensors (${st.names.join(', ')}): pass tensor to pick one`, { file: path })
      name = st.names[0]
    }
    const tensorName = name
    const s = shapeOf(st.info(tensorName).shape, `tensor "${tensorName}"`)
    return {
      rows: s.rows,
      experts: s.experts,
      read: (start, count) => st.readElements(tensorName, s.base + start * s.experts, count * s.experts),
      close: () => st.close(),
    }
  } catch (e) {
    await st.close()
    throw e
  }
}

function checkFinite(path: string, values: Float32Array, experts: number, firstRow: number): void {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) {
      throw corrupt(path, `row ${firstRow + Math.floor(i / experts)}`, `value ${values[i]} at expert ${i % experts} is not finite`)
    }
  }
}

async function* tensorBatches(path: string, format: 'npy' | 'safetensors', o: TraceBatchOptions): AsyncGenerator<TokenBatch> {
  const src = await openTensorSource(path, format, o)
  try {
    if (o.experts !== undefined && o.experts !== src.experts) {
      throw corrupt(path, 'shape', `has ${src.experts} experts in its last axis, expected ${o.experts}`)
    }
    const limit = Math.min(src.rows, o.tokens ?? Infinity)
    let b = 0
    for (let start = 0; start < limit; start += o.tokensPerBatch) {
      if (o.batches !== undefined && b >= o.batches) return
      const n = Math.min(o.tokensPerBatch, limit - start)
      const values = await src.read(start, n)
      checkFinite(path, values, src.experts, start)
      const id = (o.firstBatchId ?? 0) + b++
      yield o.values === 'scores' ? { id, tokens: n, scores: values } : { id, tokens: n, logits: values }
    }
  } finally {
    await src.close()
  }
}

/** {@link LoadStats} of a trace plus what was read. */
export interface TraceStats extends LoadStats {
  readonly format: TraceFormat
  /** Layer the statistics are about (JSONL: the record layer; tensors: the index or null for 2-D). */
  readonly layer: number | null
  readonly topK: number
}

/**
 * Per-expert load and per-batch max/mean of one layer of a trace, in one streaming pass
 * (two for JSONL without `experts`). Tensors need `topK`: each row's top-k are its experts.
 *
 * @example
 * const s = await traceStats('trace.jsonl', { batchSizes: [512] })
 * console.log(s.maxMean, s.perBatch[0].meanMaxMean)
 */
export async function traceStats(path: string, options: TraceReadOptions & { readonly batchSizes?: readonly number[] } = {}): Promise<TraceStats> {
  const format = options.format ?? traceFormatOf(path)
  const sizes = options.batchSizes ?? DEFAULT_STAT_BATCH_SIZES
  if (format === 'jsonl') {
    const experts = options.experts ?? Math.max(1, (await inspectJsonlTrace(path)).minExperts)
    const acc = new LoadAccumulator(experts, sizes)
    let layer = options.layer
    let k = options.topK
    let tokens = 0
    for await (const r of readJsonlTrace(path, { experts, topK: options.topK })) {
      if (layer === undefined) layer = r.layer
      if (r.layer !== layer) continue
      k ??= r.experts.length
      acc.addToken(r.experts)
      tokens++
    }
    if (tokens === 0) {
      throw new MoeError(ErrorCodes.INPUT_EMPTY, `${path} holds no routing records${layer !== undefined ? ` for layer ${layer}` : ''}`, { file: path })
    }
    return { ...acc.result(), format, layer: layer ?? null, topK: k ?? 0 }
  }
  const k = options.topK
  if (k === undefined || !Number.isInteger(k) || k < 1) throw invalid(`statistics of a ${format} trace need topK (experts per token)`, { file: path })
  const src = await openTensorSource(path, format, options)
  try {
    if (k > src.experts) throw invalid(`topK ${k} exceeds the ${src.experts} experts of ${path}`, { file: path })
    const acc = new LoadAccumulator(src.experts, sizes)
    const idx = new Int32Array(k)
    const chunk = 4096
    for (let start = 0; start < src.rows; start += chunk) {
      const n = Math.min(chunk, src.rows - start)
      const values = await src.read(start, n)
      checkFinite(path, values, src.experts, start)
      for (let t = 0; t < n; t++) {
        topKIndices(values, t * src.experts, src.experts, k, idx)
        acc.addToken(idx)
      }
    }
    return { ...acc.result(), format, layer: null, topK: k }
  } finally {
    await src.close()
  }
}
