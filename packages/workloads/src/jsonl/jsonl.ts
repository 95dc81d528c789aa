/**
 * JSONL routing traces: one record per token and layer, the shape inference servers dump:
 * `{"layer": 7, "token": 1234, "experts": [3, 5], "weights": [0.61, 0.39]}`.
 * Reading streams line by line (files larger than memory are fine); writing streams with
 * backpressure.
 */
import { createWriteStream } from 'node:fs'
import { once } from 'node:events'
import { createInterface } from 'node:readline'
import { MAX_EXPERTS, MAX_TOP_K } from '@moe-route/core'
import { corrupt, invalid } from '../io/errors.js'
import { openForRead } from '../io/file.js'

/** One routing record: token `token` at layer `layer` went to `experts` (slot order) with `weights`. */
export interface TraceRecord {
  readonly layer: number
  /** Token index within the trace (position in the routed stream). */
  readonly token: number
  /** Chosen expert ids in slot order (highest gate score first when the server records that order). */
  readonly experts: readonly number[]
  /** Combine weights, one per expert (optional). */
  readonly weights?: readonly number[]
}

/** Options of {@link readJsonlTrace}. */
export interface ReadJsonlOptions {
  /**
   * Number of experts E: ids ≥ E are corrupt. Without it ids must lie below core's MAX_EXPERTS
   * (65,536): an id is never trusted to size anything.
   */
  readonly experts?: number
  /** Yield only this layer's records (others are still validated). */
  readonly layer?: number
  /** Every record must have exactly this many experts. */
  readonly topK?: number
}

/**
 * Streams and validates the records of a JSONL trace. Blank lines are skipped. A line that is
 * not JSON (a truncated last line included), a missing or mistyped field, a duplicate,
 * negative or ≥ E expert id, a weights array of the wrong length or a non-finite weight is
 * `MOE_ROUTE_ERR_TRACE_CORRUPT` naming the file and the line; a missing file is
 * `MOE_ROUTE_ERR_FILE_NOT_FOUND`.
 *
 * @example
 * for await (const r of readJsonlTrace('trace.jsonl', { experts: 8, layer: 7 })) load[r.experts[0]]++
 */
export async function* readJsonlTrace(path: string, options: ReadJsonlOptions = {}): AsyncGenerator<TraceRecord> {
  const { handle } = await openForRead(path) // FILE_NOT_FOUND with the path, before streaming
  const stream = handle.createReadStream({ autoClose: false, highWaterMark: 1 << 16 })
  const lines = createInterface({ input: stream, crlfDelay: Infinity })
  let lineNo = 0
  try {
    for await (const line of lines) {
      lineNo++
      if (line.trim() === '') continue
      const record = parseRecord(path, lineNo, line, options)
      if (options.layer === undefined || record.layer === options.layer) yield record
    }
  } finally {
    lines.close()
    stream.destroy()
    await handle.close()
  }
}

function parseRecord(path: string, lineNo: number, line: string, options: ReadJsonlOptions): TraceRecord {
  const where = `line ${lineNo}`
  let value: unknown
  try {
    value = JSON.parse(line)
  } catch (cause) {
    throw corrupt(path, where, `not valid JSON (${(cause as Error).message}; truncated line?)`, cause)
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) throw corrupt(path, where, 'record is not a JSON object')
  const r = value as Record<string, unknown>
  if (!Number.isSafeInteger(r.layer) || (r.layer as number) < 0) throw corrupt(path, where, `"layer" must be a non-negative integer, got ${JSON.stringify(r.layer)}`)
  if (!Number.isSafeInteger(r.token) || (r.token as number) < 0) throw corrupt(path, where, `"token" must be a non-negative integer, got ${JSON.stringify(r.token)}`)
  if (!Array.isArray(r.experts) || r.experts.length === 0) throw corrupt(path, where, `"experts" must be a non-empty array, got ${JSON.stringify(r.experts)}`)
  const experts = r.experts as unknown[]
  if (experts.length > MAX_TOP_K) throw corrupt(path, where, `"experts" has ${experts.length} ids, more than the largest supported top-k (${MAX_TOP_K})`)
  const seen = new Set<number>()
  for (const e of experts) {
    if (!Number.isSafeInteger(e) || (e as number) < 0) throw corrupt(path, where, `expert id ${JSON.stringify(e)} is not a non-negative integer`)
    if (options.experts !== undefined && (e as number) >= options.experts) {
      throw corrupt(path, where, `expert id ${e} is out of range: the model has ${options.experts} experts (0..${options.experts - 1})`)
    }
    if (options.experts === undefined && (e as number) >= MAX_EXPERTS) {
      throw corrupt(path, where, `expert id ${e} is out of range: it exceeds the largest supported number of experts (${MAX_EXPERTS}); give the model's experts to read this trace`)
    }
    if (seen.has(e as number)) throw corrupt(path, where, `expert id ${e} appears twice`)
    seen.add(e as number)
  }
  if (options.topK !== undefined && experts.length !== options.topK) {
    throw corrupt(path, where, `record has ${experts.length} experts, expected top-${options.topK}`)
  }
  let weights: number[] | undefined
  if (r.weights !== undefined && r.weights !== null) {
    if (!Array.isArray(r.weights) || r.weights.length !== experts.length) {
      throw corrupt(path, where, `"weights" must be an array of ${experts.length} numbers (one per expert), got ${JSON.stringify(r.weights)}`)
    }
    for (const w of r.weights) {
      // JSON has no NaN literal; dumps write NaN/Infinity as strings or null
      if (typeof w !== 'number' || !Number.isFinite(w)) throw corrupt(path, where, `weight ${JSON.stringify(w)} is not a finite number (NaN?)`)
    }
    weights = r.weights as number[]
  }
  return weights ? { layer: r.layer as number, token: r.token as number, experts: experts as number[], weights } : { layer: r.layer as number, token: r.token as number, experts: experts as number[] }
}

/** What one pass over a JSONL trace found (see {@link inspectJsonlTrace}). */
export interface JsonlTraceSummary {
  readonly records: number
  /** Layers present, ascending. */
  readonly layers: readonly number[]
  /** Largest expert id + 1 (a lower bound on E). */
  readonly minExperts: number
  /** Experts per record when every record has the same number, else null. */
  readonly topK: number | null
  /** True when every record carries weights. */
  readonly hasWeights: boolean
}

/** Streams a JSONL trace once (validating it) and summarises it: layers, E lower bound, k. */
export async function inspectJsonlTrace(path: string, options: Pick<ReadJsonlOptions, 'experts'> = {}): Promise<JsonlTraceSummary> {
  const layers = new Set<number>()
  let records = 0
  let maxId = -1
  let topK: number | null | undefined
  let hasWeights = true
  for await (const r of readJsonlTrace(path, options)) {
    records++
    layers.add(r.layer)
    for (const e of r.experts) if (e > maxId) maxId = e
    topK = topK === undefined ? r.experts.length : topK === r.experts.length ? topK : null
    if (!r.weights) hasWeights = false
  }
  return { records, layers: [...layers].sort((a, b) => a - b), minExperts: maxId + 1, topK: topK ?? null, hasWeights: records > 0 && hasWeights }
}

/**
 * Writes records as JSONL, streaming with backpressure (an async iterable of millions of
 * records never piles up in memory). Weights are written with 6 significant digits.
 * Returns the number of records written.
 */
export async function writeJsonlTrace(path: string, records: Iterable<TraceRecord> | AsyncIterable<TraceRecord>): Promise<number> {
  const out = createWriteStream(path)
  out.on('error', () => {}) // surfaced through out.errored and wait(); never an uncaught 'error' event
  const writeError = (e: unknown) => invalid(`cannot write ${path}: ${(e as Error).message}`, { file: path })
  // once(out, 'drain' | 'finish') rejects with the stream's error: map it to a MoeError
  const wait = (event: string) => once(out, event).catch((e: unknown) => {
    throw writeError(e)
  })
  let n = 0
  try {
    let chunk = ''
    for await (const r of records) {
      if (out.errored) throw writeError(out.errored)
      const w = r.weights ? `,"weights":[${r.weights.map((x) => Number(x.toPrecision(6))).join(',')}]` : ''
      chunk += `{"layer":${r.layer},"token":${r.token},"experts":[${r.experts.join(',')}]${w}}\n`
      n++
      if (chunk.length >= 1 << 16) {
        if (!out.write(chunk)) await wait('drain')
        chunk = ''
      }
    }
    if (chunk) out.write(chunk)
    out.end()
    await wait('finish')
  } finally {
    out.destroy()
  }
  return n
}
