/**
 * A streaming reader and a writer for NumPy `.npy` files (format versions 1.0, 2.0 and 3.0)
 * holding float matrices such as router logits `[T × E]`. The reader parses the header and
 * reads row ranges on demand. Existing npm readers (npyjs, numpy-parser) take a whole
 * ArrayBuffer, so they cannot stream files larger than memory; this one is hand-written.
 */
import { writeFile } from 'node:fs/promises'
import type { FileHandle } from 'node:fs/promises'
import { decodeFloats, encodeFloats, floatBytes, type FloatDtype } from '../io/dtype.js'
import { corrupt, invalid } from '../io/errors.js'
import { openForRead, readExactly } from '../io/file.js'

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59] // \x93NUMPY

const DESCR_TO_DTYPE: Record<string, 'f32' | 'f16' | 'f64'> = { '<f4': 'f32', '<f2': 'f16', '<f8': 'f64' }
/** Integer descrs read by {@link openIntNpy}: bytes per element, signedness. */
const INT_DESCRS: Record<string, { bytes: 1 | 2 | 4 | 8; signed: boolean }> = {
  '|i1': { bytes: 1, signed: true },
  '|u1': { bytes: 1, signed: false },
  '<i2': { bytes: 2, signed: true },
  '<u2': { bytes: 2, signed: false },
  '<i4': { bytes: 4, signed: true },
  '<u4': { bytes: 4, signed: false },
  '<i8': { bytes: 8, signed: true },
  '<u8': { bytes: 8, signed: false },
}
const DTYPE_TO_DESCR: Record<Exclude<FloatDtype, 'bf16'>, string> = { f32: '<f4', f16: '<f2', f64: '<f8' }

/** Dtypes a `.npy` file can hold here (NumPy has no bfloat16). */
export type NpyDtype = Exclude<FloatDtype, 'bf16'>

/** An open `.npy` file of floats in C order. Call {@link NpyFile.close} when done. */
export interface NpyFile {
  readonly path: string
  /** Format version, e.g. `1.0`. */
  readonly version: string
  /** NumPy `descr`, e.g. `<f4`. */
  readonly descr: string
  readonly dtype: NpyDtype
  readonly shape: readonly number[]
  /** Rows along the first axis (1 for a 0-d array). */
  readonly rows: number
  /** Elements per row (product of the remaining axes). */
  readonly rowElements: number
  /** Byte offset of the data. */
  readonly dataOffset: number
  /** Reads rows `[start, start+count)` as float32 (`count × rowElements` values). */
  readRows(start: number, count: number): Promise<Float32Array>
  /** Reads `count` elements from flat (C-order) element index `start`. */
  readElements(start: number, count: number): Promise<Float32Array>
  /** Reads every row in chunks of `rowsPerChunk`, never holding more than one chunk. */
  chunks(rowsPerChunk: number): AsyncIterable<{ start: number; rows: number; data: Float32Array }>
  close(): Promise<void>
}

/**
 * Opens a `.npy` file and validates it: magic string, version, header dict (`descr`,
 * `fortran_order`, `shape`), a float dtype (`<f4`, `<f2`, `<f8`), C order, and a file size
 * that matches the shape exactly. Problems are `MOE_ROUTE_ERR_TRACE_CORRUPT` naming the file;
 * a missing file is `MOE_ROUTE_ERR_FILE_NOT_FOUND`.
 *
 * @example
 * const npy = await openNpy('router_logits.layer7.npy') // float16 [T × 8]
 * for await (const { start, data } of npy.chunks(4096)) { ... }
 * await npy.close()
 */
export async function openNpy(path: string): Promise<NpyFile> {
  const { handle, size } = await openForRead(path)
  try {
    return await parse(handle, path, size)
  } catch (e) {
    await handle.close()
    throw e
  }
}

interface NpyHeader {
  major: number
  minor: number
  descr: string
  shape: number[]
  dataOffset: number
}

async function parseHeader(handle: FileHandle, path: string, size: number, itemBytes: (descr: string) => number): Promise<NpyHeader> {
  if (size < 10) throw corrupt(path, 'header', `file is ${size} bytes, too short for a .npy header`)
  const pre = await readExactly(handle, path, 0, Math.min(12, size), 'header')
  if (!MAGIC.every((b, i) => pre[i] === b)) throw corrupt(path, 'header', 'missing the \\x93NUMPY magic string (not a .npy file)')
  const major = pre[6]
  const minor = pre[7]
  if (major < 1 || major > 3) throw corrupt(path, 'header', `unsupported .npy format version ${major}.${minor}`)
  const view = new DataView(pre.buffer)
  const lenBytes = major === 1 ? 2 : 4
  if (size < 8 + lenBytes) throw corrupt(path, 'header', 'file is truncated inside the header length')
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true)
  const dataOffset = 8 + lenBytes + headerLen
  if (dataOffset > size) throw corrupt(path, 'header', `header of ${headerLen} bytes runs past the end of the ${size}-byte file (truncated?)`)
  const raw = await readExactly(handle, path, 8 + lenBytes, headerLen, 'header')
  const text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(raw)
  const { descr, fortranOrder, shape } = parseHeaderDict(path, text)
  const item = itemBytes(descr)
  if (fortranOrder) throw corrupt(path, 'header', 'fortran_order is True: only C-order arrays can be streamed by rows (use np.ascontiguousarray)')
  const elements = shape.reduce((a, b) => a * b, 1)
  const expected = dataOffset + elements * item
  if (size !== expected) {
    throw corrupt(
      path,
      'data',
      size < expected
        ? `file is truncated: shape (${shape.join(', ')}) of '${descr}' needs ${expected} bytes, file has ${size}`
        : `file has ${size - expected} trailing bytes after shape (${shape.join(', ')}) of '${descr}'`,
    )
  }
  return { major, minor, descr, shape, dataOffset }
}

async function parse(handle: FileHandle, path: string, size: number): Promise<NpyFile> {
  const { major, minor, descr, shape, dataOffset } = await parseHeader(handle, path, size, (d) => {
    const dt = DESCR_TO_DTYPE[d]
    if (!dt) throw corrupt(path, 'header', `dtype '${d}' is not supported (expected little-endian float: '<f4', '<f2' or '<f8')`)
    return floatBytes(dt)
  })
  const dtype = DESCR_TO_DTYPE[descr]
  const elements = shape.reduce((a, b) => a * b, 1)
  const rows = shape.length === 0 ? 1 : shape[0]
  const rowElements = rows === 0 ? shape.slice(1).reduce((a, b) => a * b, 1) : elements / rows
  const rowBytes = rowElements * floatBytes(dtype)
  let closed = false
  const readRows = async (start: number, count: number): Promise<Float32Array> => {
    if (closed) throw invalid(`${path} is closed`, { file: path })
    if (!Number.isInteger(start) || !Number.isInteger(count) || start < 0 || count < 0 || start + count > rows) {
      throw invalid(`rows [${start}, ${start + count}) are outside ${path} with ${rows} rows`, { file: path })
    }
    const bytes = await readExactly(handle, path, dataOffset + start * rowBytes, count * rowBytes, `rows ${start}..${start + count - 1}`)
    return decodeFloats(bytes, 0, count * rowElements, dtype)
  }
  const elementsTotal = elements
  const readElements = async (start: number, count: number): Promise<Float32Array> => {
    if (closed) throw invalid(`${path} is closed`, { file: path })
    if (!Number.isSafeInteger(start) || !Number.isSafeInteger(count) || start < 0 || count < 0 || start + count > elementsTotal) {
      throw invalid(`elements [${start}, ${start + count}) are outside ${path} with ${elementsTotal} elements`, { file: path })
    }
    const size = floatBytes(dtype)
    const bytes = await readExactly(handle, path, dataOffset + start * size, count * size, `elements ${start}..${start + count - 1}`)
    return decodeFloats(bytes, 0, count, dtype)
  }
  return {
    path,
    readElements,
    version: `${major}.${minor}`,
    descr,
    dtype,
    shape,
    rows,
    rowElements,
    dataOffset,
    readRows,
    async *chunks(rowsPerChunk) {
      if (!Number.isInteger(rowsPerChunk) || rowsPerChunk < 1) throw invalid(`rowsPerChunk must be a positive integer, got ${rowsPerChunk}`)
      for (let start = 0; start < rows; start += rowsPerChunk) {
        const n = Math.min(rowsPerChunk, rows - start)
        yield { start, rows: n, data: await readRows(start, n) }
      }
    },
    async close() {
      if (closed) return
      closed = true
      await handle.close()
    },
  }
}

/** An open `.npy` file of integers (e.g. expert ids `[tokens, layers, top_k]`). Call {@link IntNpyFile.close}. */
export interface IntNpyFile {
  readonly path: string
  /** NumPy `descr`, e.g. `<i2`. */
  readonly descr: string
  readonly shape: readonly number[]
  /**
   * Reads `count` elements from flat (C-order) element index `start` as Int32. 64-bit and
   * unsigned 32-bit values outside the int32 range are `MOE_ROUTE_ERR_TRACE_CORRUPT`.
   */
  readInts(start: number, count: number): Promise<Int32Array>
  close(): Promise<void>
}

/**
 * Opens a `.npy` file of integers (`|i1`, `|u1`, `<i2`, `<u2`, `<i4`, `<u4`, `<i8`, `<u8`) with the
 * same header and size checks as {@link openNpy}; reads stream by element range.
 *
 * @example
 * const ids = await openIntNpy('routed_experts.npy') // int16 [tokens, layers, top_k]
 * const first = await ids.readInts(0, ids.shape[1] * ids.shape[2])
 */
export async function openIntNpy(path: string): Promise<IntNpyFile> {
  const { handle, size } = await openForRead(path)
  try {
    const h = await parseHeader(handle, path, size, (d) => {
      const t = INT_DESCRS[d]
      if (!t) throw corrupt(path, 'header', `dtype '${d}' is not a little-endian integer type (expected '<i2', '<i4', '<i8', ...)`)
      return t.bytes
    })
    const t = INT_DESCRS[h.descr]
    const total = h.shape.reduce((a, b) => a * b, 1)
    let closed = false
    return {
      path,
      descr: h.descr,
      shape: h.shape,
      async readInts(start, count) {
        if (closed) throw invalid(`${path} is closed`, { file: path })
        if (!Number.isSafeInteger(start) || !Number.isSafeInteger(count) || start < 0 || count < 0 || start + count > total) {
          throw invalid(`elements [${start}, ${start + count}) are outside ${path} with ${total} elements`, { file: path })
        }
        const bytes = await readExactly(handle, path, h.dataOffset + start * t.bytes, count * t.bytes, `elements ${start}..${start + count - 1}`)
        return decodeInts(bytes, count, t.bytes, t.signed, (i) => corrupt(path, `element ${start + i}`, 'does not fit in 32 bits'))
      },
      async close() {
        if (closed) return
        closed = true
        await handle.close()
      },
    }
  } catch (e) {
    await handle.close()
    throw e
  }
}

/** Little-endian integers of `bytes` wide to Int32 (values outside int32 throw `tooWide(i)`). */
export function decodeInts(bytes: Uint8Array, count: number, width: 1 | 2 | 4 | 8, signed: boolean, tooWide: (i: number) => Error): Int32Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  const out = new Int32Array(count)
  for (let i = 0; i < count; i++) {
    const o = i * width
    if (width === 1) out[i] = signed ? view.getInt8(o) : view.getUint8(o)
    else if (width === 2) out[i] = signed ? view.getInt16(o, true) : view.getUint16(o, true)
    else if (width === 4) {
      if (signed) out[i] = view.getInt32(o, true)
      else {
        const v = view.getUint32(o, true)
        if (v > 0x7fffffff) throw tooWide(i)
        out[i] = v
      }
    } else {
      const lo = view.getUint32(o, true)
      const hi = view.getInt32(o + 4, true)
      const fits = (hi === 0 && lo <= 0x7fffffff) || (signed && hi === -1 && lo >= 0x80000000)
      if (!fits) throw tooWide(i)
      out[i] = lo | 0
    }
  }
  return out
}

/** Parses the Python dict literal of a .npy header, e.g. `{'descr': '<f4', 'fortran_order': False, 'shape': (3, 8), }`. */
function parseHeaderDict(path: string, text: string): { descr: string; fortranOrder: boolean; shape: number[] } {
  const bad = (what: string) => corrupt(path, 'header', `${what} in header ${JSON.stringify(text.trim().slice(0, 120))}`)
  const body = text.trim()
  if (!body.startsWith('{') || !body.endsWith('}')) throw bad('not a dict literal')
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(body)?.[1]
  if (descr === undefined) throw bad("no 'descr'")
  const fo = /'fortran_order'\s*:\s*(True|False)/.exec(body)?.[1]
  if (fo === undefined) throw bad("no 'fortran_order'")
  const shapeText = /'shape'\s*:\s*\(([^)]*)\)/.exec(body)?.[1]
  if (shapeText === undefined) throw bad("no 'shape' tuple")
  const parts = shapeText.split(',').map((s) => s.trim()).filter((s) => s.length > 0)
  const shape = parts.map((s) => (/^\d+L?$/.test(s) ? Number.parseInt(s, 10) : NaN))
  if (shape.some((d) => !Number.isSafeInteger(d))) throw bad(`bad shape (${shapeText})`)
  return { descr, fortranOrder: fo === 'True', shape }
}

/**
 * Writes a float array as a `.npy` file (version 1.0, C order, header padded to 64 bytes
 * as NumPy does). Builds the file in memory: meant for tests and exports of moderate size.
 */
export async function writeNpy(path: string, data: ArrayLike<number>, shape: readonly number[], dtype: NpyDtype = 'f32'): Promise<void> {
  const elements = shape.reduce((a, b) => a * b, 1)
  if (data.length !== elements) throw invalid(`writeNpy: ${data.length} values do not fill shape (${shape.join(', ')})`)
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`
  let dict = `{'descr': '${DTYPE_TO_DESCR[dtype]}', 'fortran_order': False, 'shape': ${shapeText}, }`
  const total = 10 + dict.length + 1
  dict += ' '.repeat((64 - (total % 64)) % 64) + '\n'
  if (dict.length > 0xffff) throw invalid('writeNpy: header too long for format 1.0')
  const head = Buffer.alloc(10)
  Buffer.from(MAGIC).copy(head)
  head[6] = 1
  head[7] = 0
  head.writeUInt16LE(dict.length, 8)
  await writeFile(path, Buffer.concat([head, Buffer.from(dict, 'latin1'), encodeFloats(data, dtype)]))
}
