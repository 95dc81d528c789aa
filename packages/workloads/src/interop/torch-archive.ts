/**
 * `torch.save` archives (the zip format of torch ≥ 1.6): `<root>/data.pkl` read with the
 * restricted unpickler, tensors left in `<root>/data/<key>` and read by element range on demand.
 * Legacy (pre-zip) torch files are refused: their pickle is interleaved with raw storages.
 */
import { corrupt } from '../io/errors.js'
import { decodeInts } from '../npy/npy.js'
import { openZip, type ZipArchive } from '../io/zip.js'
import { readPickle, TensorRef, TORCH_DTYPE_BYTES, type PyValue } from './pickle.js'

/** Largest `data.pkl` read (64 MiB). Tensors are not in it; only the object tree is. */
export const MAX_PICKLE_BYTES = 64 * 1024 * 1024

/** An open torch archive. Call {@link TorchArchive.close}. */
export interface TorchArchive {
  readonly path: string
  /** The unpickled object: dicts, lists, tuples, numbers, strings and {@link TensorRef}s. */
  readonly root: PyValue
  /**
   * Reads `count` elements of an integer tensor (C order, from flat element `start`) as Int32.
   * int64 values must fit in int32 (expert ids and counts do); others are corrupt.
   */
  readInts(tensor: TensorRef, start: number, count: number, what: string): Promise<Int32Array>
  close(): Promise<void>
}

const INT_LAYOUT = {
  int64: { width: 8, signed: true },
  int32: { width: 4, signed: true },
  int16: { width: 2, signed: true },
  int8: { width: 1, signed: true },
  uint8: { width: 1, signed: false },
  bool: { width: 1, signed: false },
} as const
const INT_DTYPES = new Set(Object.keys(INT_LAYOUT))

/**
 * Opens a torch archive and unpickles its object tree with the allow-list of
 * {@link readPickle}: a pickle that names any other global is refused with
 * `MOE_ROUTE_ERR_TRACE_PICKLE_REFUSED` and nothing runs.
 */
export async function openTorchArchive(path: string): Promise<TorchArchive> {
  const zip = await openZip(path)
  try {
    const names = [...zip.entries.keys()]
    const pkl = names.filter((n) => /^[^/]+\/data\.pkl$/.test(n))
    if (pkl.length !== 1) throw corrupt(path, 'zip', pkl.length === 0 ? 'has no <root>/data.pkl: not a torch.save archive' : 'has several data.pkl entries')
    const root = pkl[0].slice(0, -'data.pkl'.length)
    const order = zip.entries.get(`${root}byteorder`)
    if (order) {
      const text = new TextDecoder().decode(await zip.read(`${root}byteorder`))
      if (text.trim() !== 'little') throw corrupt(path, `${root}byteorder`, `says "${text.trim()}": only little-endian archives are read`)
    }
    const size = zip.entries.get(pkl[0])!.size
    if (size > MAX_PICKLE_BYTES) throw corrupt(path, pkl[0], `is ${size} bytes (limit ${MAX_PICKLE_BYTES})`)
    const value = readPickle(await zip.read(pkl[0]), path, pkl[0])
    return makeArchive(path, zip, root, value)
  } catch (e) {
    await zip.close()
    throw e
  }
}

function contiguousStrides(shape: readonly number[]): number[] {
  const out = new Array<number>(shape.length)
  let s = 1
  for (let i = shape.length - 1; i >= 0; i--) {
    out[i] = s
    s *= shape[i]
  }
  return out
}

function makeArchive(path: string, zip: ZipArchive, root: string, value: PyValue): TorchArchive {
  return {
    path,
    root: value,
    async readInts(t, start, count, what) {
      const dtype = t.storage.dtype
      if (!INT_DTYPES.has(dtype)) throw corrupt(path, what, `tensor dtype ${dtype} is not an integer type`)
      const numel = t.numel
      if (numel > 0 && t.shape.some((d, i) => d > 1 && t.stride[i] !== contiguousStrides(t.shape)[i])) {
        throw corrupt(path, what, `tensor of shape [${t.shape}] has strides [${t.stride}]: only C-contiguous tensors are read`)
      }
      if (t.offset + numel > t.storage.numel) throw corrupt(path, what, `tensor [${t.shape}] at offset ${t.offset} runs past its storage of ${t.storage.numel} elements`)
      if (!Number.isSafeInteger(start) || !Number.isSafeInteger(count) || start < 0 || count < 0 || start + count > numel) {
        throw corrupt(path, what, `elements [${start}, ${start + count}) are outside the tensor's ${numel}`)
      }
      const entry = `${root}data/${t.storage.key}`
      const info = zip.entries.get(entry)
      if (!info) throw corrupt(path, what, `storage ${entry} is missing from the archive`)
      const itemBytes = TORCH_DTYPE_BYTES[dtype]
      if (info.size < t.storage.numel * itemBytes) throw corrupt(path, entry, `holds ${info.size} bytes, its ${t.storage.numel} ${dtype} elements need ${t.storage.numel * itemBytes} (truncated?)`)
      const bytes = await zip.read(entry, (t.offset + start) * itemBytes, count * itemBytes)
      const { width, signed } = INT_LAYOUT[dtype as keyof typeof INT_LAYOUT]
      return decodeInts(bytes, count, width, signed, (i) => corrupt(path, what, `element ${start + i} does not fit in 32 bits`))
    },
    close: () => zip.close(),
  }
}

/** A dict's value by key, or undefined. */
export function dictGet(v: PyValue | undefined, key: string): PyValue | undefined {
  return v && typeof v === 'object' && 'map' in v ? (v as { map: Map<unknown, PyValue> }).map.get(key) : undefined
}
