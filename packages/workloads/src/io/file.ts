/**
 * Positional reads on a file handle, so readers touch only the bytes they need and never
 * load a whole large file.
 */
import { open, type FileHandle } from 'node:fs/promises'
import { corrupt, notFound } from './errors.js'

/** Opens a file for reading; a missing or unreadable file is `MOE_ROUTE_ERR_FILE_NOT_FOUND`. */
export async function openForRead(path: string): Promise<{ handle: FileHandle; size: number }> {
  let handle: FileHandle
  try {
    handle = await open(path, 'r')
  } catch (cause) {
    throw notFound(path, cause)
  }
  try {
    const st = await handle.stat()
    if (!st.isFile()) throw new Error('not a regular file')
    return { handle, size: st.size }
  } catch (cause) {
    await handle.close()
    throw notFound(path, cause)
  }
}

/**
 * Reads exactly `length` bytes at `position` into a fresh, 8-byte-aligned buffer.
 * A short read (file shorter than promised) is `MOE_ROUTE_ERR_TRACE_CORRUPT` naming `record`.
 */
export async function readExactly(
  handle: FileHandle,
  file: string,
  position: number,
  length: number,
  record: string | number,
): Promise<Uint8Array> {
  const out = new Uint8Array(new ArrayBuffer(length))
  let done = 0
  while (done < length) {
    const { bytesRead } = await handle.read(out, done, length - done, position + done)
    if (bytesRead === 0) {
      throw corrupt(file, record, `file is truncated: needed ${length} bytes at offset ${position}, got ${done}`)
    }
    done += bytesRead
  }
  return out
}
