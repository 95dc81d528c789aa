/**
 * vLLM routed-experts replay arrays (`routed_experts` of a request, see vLLM's
 * `vllm/model_executor/layers/fused_moe/routed_experts_capturer.py`): integer expert ids of shape
 * `[tokens, layers, top_k]` (int16 or int32), stored as `.npy`, as a 3-D integer tensor in a
 * safetensors file, or as JSON (`[[[...]]]`, or `{"routed_experts": [[[...]]]}`). Every reader
 * streams: `.npy` and safetensors by element range, JSON through a streaming parser.
 */
import JSONParser from '@streamparser/json/jsonparser.js'
import { corrupt, invalid } from '../io/errors.js'
import { openForRead } from '../io/file.js'
import { openIntNpy } from '../npy/npy.js'
import { openSafetensors } from '../safetensors/safetensors.js'
import {
  checkIds,
  MAX_INFERRED_EXPERTS,
  stepsFromChunks,
  type RecordFormat,
  type RoutingRecord,
  type TokenChunk,
} from './record.js'

/** Options shared by the record readers. */
export interface RecordReadOptions {
  /** Experts E: ids ≥ E are corrupt. Without it, records that do not declare E take max id + 1 (one extra pass). */
  readonly experts?: number
  /** Safetensors: the tensor holding the ids (default: the only integer tensor of rank 3). */
  readonly tensor?: string
}

/** A `[tokens, layers, k]` integer array read by element range. */
interface IdArray {
  readonly shape: readonly number[]
  read(start: number, count: number): Promise<Int32Array>
  close(): Promise<void>
}

const CHUNK_TOKENS = 4096

async function tokenArrayRecord(file: string, format: RecordFormat, arr: IdArray, o: RecordReadOptions): Promise<RoutingRecord> {
  const shape = arr.shape.length === 2 ? [arr.shape[0], 1, arr.shape[1]] : arr.shape
  if (shape.length !== 3) throw corrupt(file, 'shape', `[${arr.shape}] is not [tokens, layers, top_k] (or [tokens, top_k])`)
  const [T, L, k] = shape
  if (L < 1 || k < 1) throw corrupt(file, 'shape', `[${arr.shape}] has no layer or no expert slot`)
  const row = L * k
  async function* raw(chunkTokens: number): AsyncGenerator<{ start: number; ids: Int32Array }> {
    for (let t = 0; t < T; t += chunkTokens) {
      const n = Math.min(chunkTokens, T - t)
      yield { start: t, ids: await arr.read(t * row, n * row) }
    }
  }
  const where = (start: number) => (i: number) => `token ${start + Math.floor(i / row)}, layer ${Math.floor((i % row) / k)}, slot ${i % k}`
  let experts = o.experts
  if (experts === undefined) {
    let max = -1
    for await (const c of raw(CHUNK_TOKENS)) max = Math.max(max, checkIds(file, c.ids, MAX_INFERRED_EXPERTS, where(c.start)))
    experts = max + 1
    if (experts < 1) throw corrupt(file, 'data', 'holds no expert id')
  }
  const E = experts
  const chunks = async function* (opts: { tokens?: number } = {}): AsyncGenerator<TokenChunk> {
    for await (const c of raw(opts.tokens ?? CHUNK_TOKENS)) {
      checkIds(file, c.ids, E, where(c.start))
      yield { start: c.start, tokens: c.ids.length / row, ids: c.ids }
    }
  }
  return vllmRecord(file, format, L, E, k, T, chunks, () => arr.close())
}

/** A token-level vLLM record over `chunks` (layers are MoE-layer positions 0..L-1). */
function vllmRecord(file: string, format: RecordFormat, L: number, E: number, k: number, T: number, chunks: RoutingRecord['chunks'], close: () => Promise<void>): RoutingRecord {
  return {
    file,
    format,
    engine: 'vllm',
    kind: 'tokens',
    layers: Array.from({ length: L }, (_, i) => i),
    experts: E,
    topK: k,
    tokens: T,
    recordedSteps: null,
    ranks: 1,
    meta: {},
    chunks,
    steps: (s = {}) => stepsFromChunks(chunks(), L, k, E, s.tokensPerStep),
    close,
  }
}

/** Opens a vLLM routed-experts `.npy` (`[tokens, layers, top_k]`, any integer dtype). */
export async function openVllmNpy(path: string, o: RecordReadOptions = {}): Promise<RoutingRecord> {
  const npy = await openIntNpy(path)
  try {
    return await tokenArrayRecord(path, 'vllm-npy', { shape: npy.shape, read: (s, c) => npy.readInts(s, c), close: () => npy.close() }, o)
  } catch (e) {
    await npy.close()
    throw e
  }
}

/** Opens a vLLM routed-experts array stored as an integer safetensors tensor. */
export async function openVllmSafetensors(path: string, o: RecordReadOptions = {}): Promise<RoutingRecord> {
  const st = await openSafetensors(path)
  try {
    let name = o.tensor
    if (name === undefined) {
      const ids = st.tensors.filter((t) => !/^F|^BF/.test(t.dtype) && (t.shape.length === 3 || t.shape.length === 2))
      if (ids.length !== 1) throw invalid(`${path} has ${ids.length} integer tensors of rank 2 or 3 (${ids.map((t) => t.name).join(', ') || 'none'}): pass tensor to pick one`, { file: path })
      name = ids[0].name
    }
    const t = st.info(name)
    const tensorName = name
    return await tokenArrayRecord(path, 'vllm-safetensors', { shape: t.shape, read: (s, c) => st.readInts(tensorName, s, c), close: () => st.close() }, o)
  } catch (e) {
    await st.close()
    throw e
  }
}

/**
 * Streams the token rows (`[layers][top_k]` each) of a routed-experts JSON document, checking
 * that every row has the first row's shape.
 */
async function* jsonRows(path: string): AsyncGenerator<{ index: number; layers: number; k: number; ids: Int32Array }> {
  const { handle } = await openForRead(path)
  const stream = handle.createReadStream({ autoClose: false, highWaterMark: 1 << 16 })
  let first: number | undefined
  let parser: JSONParser | undefined
  const pending: unknown[] = []
  let failure: Error | undefined
  let L = -1
  let k = -1
  let index = 0
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      if (!parser) {
        const text = chunk.toString('utf8').trimStart()
        first = text.charCodeAt(0)
        if (first !== 0x5b && first !== 0x7b) throw corrupt(path, 'JSON', 'is not an array of tokens nor an object with "routed_experts"')
        parser = new JSONParser({ paths: [first === 0x5b ? '$.*' : '$.routed_experts.*'], keepStack: false })
        parser.onValue = ({ value }) => void pending.push(value)
        parser.onError = (err) => void (failure = err)
      }
      parser.write(chunk)
      if (failure) throw corrupt(path, `JSON near token ${index}`, `not valid JSON: ${failure.message}`, failure)
      for (const value of pending.splice(0)) {
        if (!Array.isArray(value) || value.length === 0 || !value.every((r) => Array.isArray(r))) {
          throw corrupt(path, `token ${index}`, 'is not a [layers][top_k] array of expert ids')
        }
        if (L < 0) {
          L = value.length
          k = (value[0] as unknown[]).length
          if (k === 0) throw corrupt(path, `token ${index}`, 'has no expert slot')
        }
        if (value.length !== L) throw corrupt(path, `token ${index}`, `has ${value.length} layers, the first token ${L}`)
        const ids = new Int32Array(L * k)
        value.forEach((r: unknown[], i: number) => {
          if (r.length !== k) throw corrupt(path, `token ${index}, layer ${i}`, `has ${r.length} slots, the first token ${k}`)
          r.forEach((e, j) => {
            if (typeof e !== 'number' || !Number.isInteger(e) || e < -1 || e > 0x7fffffff) throw corrupt(path, `token ${index}, layer ${i}, slot ${j}`, `${JSON.stringify(e)} is not an expert id`)
            ids[i * k + j] = e
          })
        })
        yield { index: index++, layers: L, k, ids }
      }
    }
    if (!parser) throw corrupt(path, 'JSON', 'file is empty')
    if (!parser.isEnded) parser.end()
    if (failure || !parser.isEnded) throw corrupt(path, 'JSON', `document is truncated or invalid${failure ? `: ${failure.message}` : ''}`)
  } catch (e) {
    if (e instanceof Error && !('code' in e && String((e as { code: unknown }).code).startsWith('MOE_ROUTE_ERR'))) {
      throw corrupt(path, `JSON near token ${index}`, `not valid JSON: ${e.message}`, e)
    }
    throw e
  } finally {
    stream.destroy()
    await handle.close()
  }
}

/** Opens a vLLM routed-experts JSON document (two streaming passes when E is not given: one to find it). */
export async function openVllmJson(path: string, o: RecordReadOptions = {}): Promise<RoutingRecord> {
  let T = 0
  let L = 0
  let k = 0
  let max = -1
  for await (const r of jsonRows(path)) {
    T++
    L = r.layers
    k = r.k
    max = Math.max(max, checkIds(path, r.ids, o.experts ?? MAX_INFERRED_EXPERTS, (i) => `token ${r.index}, layer ${Math.floor(i / r.k)}, slot ${i % r.k}`))
  }
  if (T === 0) throw corrupt(path, 'JSON', 'holds no token')
  const E = o.experts ?? max + 1
  if (E < 1) throw corrupt(path, 'data', 'holds no expert id')
  const row = L * k
  const chunks = async function* (opts: { tokens?: number } = {}): AsyncGenerator<TokenChunk> {
    const size = opts.tokens ?? CHUNK_TOKENS
    let buf = new Int32Array(size * row)
    let n = 0
    let start = 0
    for await (const r of jsonRows(path)) {
      if (r.layers !== L || r.k !== k) throw corrupt(path, `token ${r.index}`, 'changed shape between passes (file modified while reading?)')
      checkIds(path, r.ids, E, (i) => `token ${r.index}, layer ${Math.floor(i / k)}, slot ${i % k}`)
      buf.set(r.ids, n * row)
      if (++n === size) {
        yield { start, tokens: n, ids: buf }
        start += n
        n = 0
        buf = new Int32Array(size * row)
      }
    }
    if (n > 0) yield { start, tokens: n, ids: buf.subarray(0, n * row) }
  }
  return vllmRecord(path, 'vllm-json', L, E, k, T, chunks, async () => {})
}
