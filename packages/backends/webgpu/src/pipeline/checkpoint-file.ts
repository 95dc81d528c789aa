/**
 * Reading a checkpoint's tensors from the file system (Node: `node:fs` and
 * @moe-route/workloads' safetensors reader, both imported on first use). The browser build
 * uses checkpoint-file.browser.ts instead, which has no file system to read.
 */
import { ErrorCodes, MoeError } from '@moe-route/core'

/** Tensor dtypes a checkpoint's weights may be stored in. */
export const CHECKPOINT_DTYPES = ['F32', 'F16', 'BF16'] as const
/** One of {@link CHECKPOINT_DTYPES}. */
export type CheckpointDtype = (typeof CHECKPOINT_DTYPES)[number]

/** An open checkpoint: one tensor's raw bytes at a time. */
export interface Checkpoint {
  /**
   * The raw bytes of tensor `name`, checked against `shape`.
   * @throws MOE_ROUTE_ERR_SHAPE_MISMATCH, MOE_ROUTE_ERR_INPUT_INVALID (missing tensor, non-float dtype)
   */
  bytes(name: string, shape: readonly number[]): Promise<{ data: Uint8Array; dtype: CheckpointDtype }>
  close(): Promise<void>
}

/**
 * Opens a checkpoint for reading tensors by name: one safetensors file, or the shards of a
 * `*.safetensors.index.json` (each shard a plain file name next to the index).
 * @throws MOE_ROUTE_ERR_FILE_NOT_FOUND, MOE_ROUTE_ERR_TRACE_CORRUPT for an unreadable or malformed index
 */
export async function openCheckpoint(file: string): Promise<Checkpoint> {
  const { openSafetensors } = await import('@moe-route/workloads')
  const { readFile } = await import('node:fs/promises')
  const { dirname, join, basename } = await import('node:path')
  let shards: Map<string, string> | null = null
  if (file.endsWith('.json')) {
    let index: { weight_map?: Record<string, string> }
    try {
      index = JSON.parse(await readFile(file, 'utf8'))
    } catch (cause) {
      throw new MoeError(ErrorCodes.FILE_NOT_FOUND, `cannot read the safetensors index ${file}: ${(cause as Error).message}`, { file }, { cause })
    }
    if (!index || typeof index.weight_map !== 'object' || index.weight_map === null) {
      throw new MoeError(ErrorCodes.TRACE_CORRUPT, `${file} is not a safetensors index (no weight_map)`, { file })
    }
    shards = new Map(Object.entries(index.weight_map).map(([k, v]) => [k, String(v)]))
  }
  const open = new Map<string, Awaited<ReturnType<typeof openSafetensors>>>()
  const fileOf = (name: string) => {
    if (!shards) return file
    const shard = shards.get(name)
    if (!shard) throw new MoeError(ErrorCodes.INPUT_INVALID, `${file} maps no shard for tensor ${name}`, { file })
    // a shard is a file next to the index: never a path that leaves its folder
    if (basename(shard) !== shard) throw new MoeError(ErrorCodes.INPUT_INVALID, `${file}: shard name ${JSON.stringify(shard)} is not a plain file name`, { file })
    return join(dirname(file), shard)
  }
  return {
    async bytes(name, shape) {
      const path = fileOf(name)
      let st = open.get(path)
      if (!st) open.set(path, (st = await openSafetensors(path)))
      const info = st.info(name)
      if (info.shape.length !== shape.length || info.shape.some((d, i) => d !== shape[i])) {
        throw new MoeError(ErrorCodes.SHAPE_MISMATCH, `${path}: tensor ${name} has shape [${info.shape}], the model needs [${shape}]`, { file: path })
      }
      if (!(CHECKPOINT_DTYPES as readonly string[]).includes(info.dtype)) throw new MoeError(ErrorCodes.INPUT_INVALID, `${path}: tensor ${name} is ${info.dtype}; weights must be F32, F16 or BF16`, { file: path })
      return { data: await st.readTensorBytes(name), dtype: info.dtype as CheckpointDtype }
    },
    async close() {
      for (const st of open.values()) await st.close()
    },
  }
}
