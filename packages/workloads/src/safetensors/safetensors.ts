/**
 * A streaming reader and a writer for the safetensors format
 * (https://github.com/huggingface/safetensors): 8 bytes little-endian header length N, N
 * bytes of JSON header, then the raw tensor bytes. The reader parses only the header on
 * open and reads one tensor's (or a few rows') bytes on demand, so checkpoints larger than
 * memory are fine. No npm package reads local safetensors files without loading them whole,
 * hence this hand-written one.
 */
import { writeFile } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { decodeFloats, encodeFloats, type FloatDtype } from '../io/dtype.js'
import { corrupt, invalid } from '../io/errors.js'
import { openForRead, readExactly } from '../io/file.js'
import { decodeInts } from '../npy/npy.js'

/** Header limit, as in the reference Rust implementation (100 MB). */
const MAX_HEADER_BYTES = 100_000_000

/** Element sizes of every dtype the safetensors format defines. */
export const SAFETENSORS_DTYPE_BYTES = {
  BOOL: 1,
  U8: 1,
  I8: 1,
  F8_E5M2: 1,
  F8_E4M3: 1,
  I16: 2,
  U16: 2,
  F16: 2,
  BF16: 2,
  I32: 4,
  U32: 4,
  F32: 4,
  F64: 8,
  I64: 8,
  U64: 8,
} as const

/** A dtype name of the safetensors format. */
export type SafetensorsDtype = keyof typeof SAFETENSORS_DTYPE_BYTES

const INT_DTYPES: Partial<Record<SafetensorsDtype, { width: 1 | 2 | 4 | 8; signed: boolean }>> = {
  BOOL: { width: 1, signed: false },
  U8: { width: 1, signed: false },
  I8: { width: 1, signed: true },
  I16: { width: 2, signed: true },
  U16: { width: 2, signed: false },
  I32: { width: 4, signed: true },
  U32: { width: 4, signed: false },
  I64: { width: 8, signed: true },
  U64: { width: 8, signed: false },
}

const FLOAT_DTYPES: Partial<Record<SafetensorsDtype, FloatDtype>> = { F32: 'f32', F16: 'f16', BF16: 'bf16', F64: 'f64' }

/** One tensor entry of a safetensors header. */
export interface SafetensorsTensorInfo {
  readonly name: string
  readonly dtype: SafetensorsDtype
  readonly shape: readonly number[]
  /** Elements (product of the shape; 1 for a scalar). */
  readonly elements: number
  /** `[begin, end)` relative to the start of the data section, as in the header. */
  readonly dataOffsets: readonly [number, number]
  /** Absolute byte offset of the tensor in the file. */
  readonly fileOffset: number
  readonly byteLength: number
}

/**
 * An open safetensors file. Reads are positional; the handle stays open until
 * {@link SafetensorsFile.close} (call it, or the process keeps a file descriptor).
 */
export interface SafetensorsFile {
  readonly path: string
  /** Bytes of the JSON header (N). */
  readonly headerLength: number
  /** `__metadata__` string map (empty when absent). */
  readonly metadata: Readonly<Record<string, string>>
  /** Tensors in data-offset order. */
  readonly tensors: readonly SafetensorsTensorInfo[]
  /** Tensor names in data-offset order. */
  readonly names: readonly string[]
  /** Header entry of one tensor; throws `MOE_ROUTE_ERR_INPUT_INVALID` naming the valid names when absent. */
  info(name: string): SafetensorsTensorInfo
  /** Reads one float tensor (F32, F16, BF16 or F64) into a Float32Array, touching only its bytes. */
  readTensor(name: string): Promise<Float32Array>
  /**
   * Reads rows `[start, start+count)` of a float tensor whose first axis is rows (e.g. a
   * `[T × E]` logits matrix): `count × (elements / shape[0])` values.
   */
  readRows(name: string, start: number, count: number): Promise<Float32Array>
  /**
   * Reads `count` elements from flat element index `start` of a float tensor (row-major),
   * e.g. one layer's rows of an `[L × T × E]` tensor.
   */
  readElements(name: string, start: number, count: number): Promise<Float32Array>
  /** Raw little-endian bytes of any tensor (integer dtypes, fp8, ...). */
  readTensorBytes(name: string): Promise<Uint8Array>
  /**
   * Reads `count` elements from flat element index `start` of an integer tensor (I8, U8, I16,
   * U16, I32, U32, I64, U64, BOOL) as Int32; values outside int32 are `MOE_ROUTE_ERR_TRACE_CORRUPT`.
   */
  readInts(name: string, start: number, count: number): Promise<Int32Array>
  /** Closes the file handle. Further reads reject. */
  close(): Promise<void>
}

/**
 * Opens a safetensors file and validates its header: the length fits in the file, the JSON
 * parses to an object, every dtype is known, every shape is a list of non-negative integers,
 * every byte range matches its shape and dtype, lies within the file and overlaps no other.
 * Problems are `MOE_ROUTE_ERR_TRACE_CORRUPT` naming the file and the tensor;
 * a missing file is `MOE_ROUTE_ERR_FILE_NOT_FOUND`.
 *
 * @example
 * const st = await openSafetensors('model-00001.safetensors')
 * try {
 *   const w1 = await st.readTensor('model.layers.0.block_sparse_moe.experts.0.w1.weight')
 * } finally {
 *   await st.close()
 * }
 */
export async function openSafetensors(path: string): Promise<SafetensorsFile> {
  const { handle, size } = await openForRead(path)
  try {
    const parsed = await readHeader(handle, path, size)
    return makeFile(handle, path, parsed)
  } catch (e) {
    await handle.close()
    throw e
  }
}

interface ParsedHeader {
  headerLength: number
  metadata: Record<string, string>
  tensors: SafetensorsTensorInfo[]
}

async function readHeader(handle: FileHandle, path: string, size: number): Promise<ParsedHeader> {
  if (size < 8) throw corrupt(path, 'header', `file is ${size} bytes, too short for the 8-byte header length`)
  const lenBytes = await readExactly(handle, path, 0, 8, 'header')
  const n64 = new DataView(lenBytes.buffer).getBigUint64(0, true)
  if (n64 > BigInt(MAX_HEADER_BYTES)) throw corrupt(path, 'header', `header length ${n64} exceeds the ${MAX_HEADER_BYTES}-byte limit`)
  const headerLength = Number(n64)
  if (8 + headerLength > size) {
    throw corrupt(path, 'header', `header length ${headerLength} runs past the end of the ${size}-byte file (truncated?)`)
  }
  const raw = await readExactly(handle, path, 8, headerLength, 'header')
  let json: unknown
  try {
    json = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(raw))
  } catch (cause) {
    throw corrupt(path, 'header', `header is not valid UTF-8 JSON: ${(cause as Error).message}`, cause)
  }
  if (typeof json !== 'object' || json === null || Array.isArray(json)) throw corrupt(path, 'header', 'header JSON is not an object')
  const dataStart = 8 + headerLength
  const dataLength = size - dataStart
  const metadata: Record<string, string> = {}
  const tensors: SafetensorsTensorInfo[] = []
  for (const [name, entry] of Object.entries(json as Record<string, unknown>)) {
    if (name === '__metadata__') {
      if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw corrupt(path, 'header', '__metadata__ is not an object')
      for (const [k, v] of Object.entries(entry)) {
        if (typeof v !== 'string') throw corrupt(path, 'header', `__metadata__.${k} is not a string`)
        metadata[k] = v
      }
      continue
    }
    tensors.push(parseEntry(path, name, entry, dataStart, dataLength))
  }
  tensors.sort((a, b) => a.dataOffsets[0] - b.dataOffsets[0] || a.dataOffsets[1] - b.dataOffsets[1])
  for (let i = 1; i < tensors.length; i++) {
    const prev = tensors[i - 1]
    const cur = tensors[i]
    if (cur.dataOffsets[0] < prev.dataOffsets[1]) {
      throw corrupt(path, `tensor "${cur.name}"`, `data_offsets [${cur.dataOffsets}] overlap tensor "${prev.name}" [${prev.dataOffsets}]`)
    }
  }
  return { headerLength, metadata, tensors }
}

function parseEntry(path: string, name: string, entry: unknown, dataStart: number, dataLength: number): SafetensorsTensorInfo {
  const where = `tensor "${name}"`
  if (typeof entry !== 'object' || entry === null || Array.isArray(entry)) throw corrupt(path, where, 'header entry is not an object')
  const { dtype, shape, data_offsets: offsets } = entry as Record<string, unknown>
  if (typeof dtype !== 'string' || !(dtype in SAFETENSORS_DTYPE_BYTES)) {
    throw corrupt(path, where, `unknown dtype ${JSON.stringify(dtype)} (known: ${Object.keys(SAFETENSORS_DTYPE_BYTES).join(', ')})`)
  }
  if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) {
    throw corrupt(path, where, `shape ${JSON.stringify(shape)} is not a list of non-negative integers`)
  }
  if (
    !Array.isArray(offsets) ||
    offsets.length !== 2 ||
    !offsets.every((o) => Number.isSafeInteger(o) && o >= 0) ||
    offsets[1] < offsets[0]
  ) {
    throw corrupt(path, where, `data_offsets ${JSON.stringify(offsets)} is not [begin, end] with 0 ≤ begin ≤ end`)
  }
  const elements = (shape as number[]).reduce((a, b) => a * b, 1)
  const bytesPer = SAFETENSORS_DTYPE_BYTES[dtype as SafetensorsDtype]
  const byteLength = offsets[1] - offsets[0]
  if (byteLength !== elements * bytesPer) {
    throw corrupt(path, where, `data_offsets span ${byteLength} bytes but shape [${shape}] of ${dtype} needs ${elements * bytesPer}`)
  }
  if (offsets[1] > dataLength) {
    throw corrupt(path, where, `data_offsets end ${offsets[1]} is past the end of the data section (${dataLength} bytes; truncated file?)`)
  }
  return {
    name,
    dtype: dtype as SafetensorsDtype,
    shape: shape as number[],
    elements,
    dataOffsets: [offsets[0], offsets[1]],
    fileOffset: dataStart + offsets[0],
    byteLength,
  }
}

function makeFile(handle: FileHandle, path: string, header: ParsedHeader): SafetensorsFile {
  const byName = new Map(header.tensors.map((t) => [t.name, t]))
  let closed = false
  const info = (name: string): SafetensorsTensorInfo => {
    const t = byName.get(name)
    if (!t) {
      const names = [...byName.keys()]
      const list = names.length > 20 ? `${names.slice(0, 20).join(', ')}, … (${names.length} in all)` : names.join(', ')
      throw invalid(`${path} has no tensor "${name}" (tensors: ${list || 'none'})`, { file: path, record: name })
    }
    return t
  }
  const floatDtype = (t: SafetensorsTensorInfo): FloatDtype => {
    const f = FLOAT_DTYPES[t.dtype]
    if (!f) throw corrupt(path, `tensor "${t.name}"`, `dtype ${t.dtype} is not a float type (expected F32, F16, BF16 or F64)`)
    return f
  }
  const ensureOpen = () => {
    if (closed) throw invalid(`${path} is closed`, { file: path })
  }
  return {
    path,
    headerLength: header.headerLength,
    metadata: header.metadata,
    tensors: header.tensors,
    names: header.tensors.map((t) => t.name),
    info,
    async readTensorBytes(name) {
      ensureOpen()
      const t = info(name)
      return readExactly(handle, path, t.fileOffset, t.byteLength, `tensor "${name}"`)
    },
    async readTensor(name) {
      ensureOpen()
      const t = info(name)
      const dt = floatDtype(t)
      const bytes = await readExactly(handle, path, t.fileOffset, t.byteLength, `tensor "${name}"`)
      return decodeFloats(bytes, 0, t.elements, dt)
    },
    async readRows(name, start, count) {
      ensureOpen()
      const t = info(name)
      const dt = floatDtype(t)
      const rows = t.shape.length === 0 ? 1 : t.shape[0]
      if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count < 0 || start + count > rows) {
        throw invalid(`rows [${start}, ${start + count}) are outside tensor "${name}" with ${rows} rows`, { file: path, record: name })
      }
      const rowElems = rows === 0 ? 0 : t.elements / rows
      const rowBytes = rowElems * SAFETENSORS_DTYPE_BYTES[t.dtype]
      const bytes = await readExactly(handle, path, t.fileOffset + start * rowBytes, count * rowBytes, `tensor "${name}" rows ${start}..${start + count - 1}`)
      return decodeFloats(bytes, 0, count * rowElems, dt)
    },
    async readElements(name, start, count) {
      ensureOpen()
      const t = info(name)
      const dt = floatDtype(t)
      if (!Number.isSafeInteger(start) || !Number.isSafeInteger(count) || start < 0 || count < 0 || start + count > t.elements) {
        throw invalid(`elements [${start}, ${start + count}) are outside tensor "${name}" with ${t.elements} elements`, { file: path, record: name })
      }
      const size = SAFETENSORS_DTYPE_BYTES[t.dtype]
      const bytes = await readExactly(handle, path, t.fileOffset + start * size, count * size, `tensor "${name}" elements ${start}..${start + count - 1}`)
      return decodeFloats(bytes, 0, count, dt)
    },
    async readInts(name, start, count) {
      ensureOpen()
      const t = info(name)
      const it = INT_DTYPES[t.dtype]
      if (!it) throw corrupt(path, `tensor "${name}"`, `dtype ${t.dtype} is not an integer type`)
      if (!Number.isSafeInteger(start) || !Number.isSafeInteger(count) || start < 0 || count < 0 || start + count > t.elements) {
        throw invalid(`elements [${start}, ${start + count}) are outside tensor "${name}" with ${t.elements} elements`, { file: path, record: name })
      }
      const bytes = await readExactly(handle, path, t.fileOffset + start * it.width, count * it.width, `tensor "${name}" elements ${start}..${start + count - 1}`)
      return decodeInts(bytes, count, it.width, it.signed, (i) => corrupt(path, `tensor "${name}" element ${start + i}`, 'does not fit in 32 bits'))
    },
    async close() {
      if (closed) return
      closed = true
      await handle.close()
    },
  }
}

/** A tensor to write: float values are encoded to `dtype`; raw bytes are written as given. */
export type SafetensorsTensorInput =
  | { readonly dtype: 'F32' | 'F16' | 'BF16' | 'F64'; readonly shape: readonly number[]; readonly data: ArrayLike<number> }
  | { readonly dtype: SafetensorsDtype; readonly shape: readonly number[]; readonly bytes: Uint8Array }

/**
 * Writes tensors to a safetensors file, in the order given, with the header padded with
 * spaces to a multiple of 8 bytes (as the reference implementation does). Meant for tests,
 * fixtures and exporting generated traces; it builds the file in memory.
 */
export async function writeSafetensors(
  path: string,
  tensors: Readonly<Record<string, SafetensorsTensorInput>>,
  metadata?: Readonly<Record<string, string>>,
): Promise<void> {
  const header: Record<string, unknown> = {}
  if (metadata) header.__metadata__ = { ...metadata }
  const parts: Uint8Array[] = []
  let offset = 0
  for (const [name, t] of Object.entries(tensors)) {
    const elements = t.shape.reduce((a, b) => a * b, 1)
    let bytes: Uint8Array
    if ('bytes' in t) {
      bytes = t.bytes
    } else {
      if (t.data.length !== elements) throw invalid(`tensor "${name}" has ${t.data.length} values but shape [${t.shape}] needs ${elements}`)
      bytes = encodeFloats(t.data, FLOAT_DTYPES[t.dtype] as FloatDtype)
    }
    if (bytes.length !== elements * SAFETENSORS_DTYPE_BYTES[t.dtype]) {
      throw invalid(`tensor "${name}" has ${bytes.length} bytes but shape [${t.shape}] of ${t.dtype} needs ${elements * SAFETENSORS_DTYPE_BYTES[t.dtype]}`)
    }
    header[name] = { dtype: t.dtype, shape: [...t.shape], data_offsets: [offset, offset + bytes.length] }
    parts.push(bytes)
    offset += bytes.length
  }
  let json = JSON.stringify(header)
  const enc = new TextEncoder()
  const len = enc.encode(json).length
  json += ' '.repeat((8 - (len % 8)) % 8)
  const headerBytes = enc.encode(json)
  const prefix = new Uint8Array(8)
  new DataView(prefix.buffer).setBigUint64(0, BigInt(headerBytes.length), true)
  await writeFile(path, Buffer.concat([prefix, headerBytes, ...parts]))
}
