/**
 * Zip archives read through yauzl (central directory first, entries on demand), so a large
 * archive is never loaded whole: an uncompressed ("stored") entry is read by byte range from
 * its data offset, which is how torch.save's storages are laid out. Every failure is a
 * `MOE_ROUTE_ERR_TRACE_CORRUPT` naming the archive and the entry.
 */
import yauzl, { type Entry, type ZipFile } from 'yauzl'
import { corrupt, notFound } from './errors.js'
import { openForRead, readExactly } from './file.js'
import type { FileHandle } from 'node:fs/promises'

/** One entry of an open archive. */
export interface ZipEntryInfo {
  readonly name: string
  /** Bytes after decompression. */
  readonly size: number
  /** True when the entry is stored without compression (byte-range reads work). */
  readonly stored: boolean
}

/** An open zip archive. Call {@link ZipArchive.close}. */
export interface ZipArchive {
  readonly path: string
  readonly entries: ReadonlyMap<string, ZipEntryInfo>
  /**
   * Reads `[start, start + length)` of an entry's uncompressed bytes. Stored entries are read
   * positionally; compressed ones are inflated from the start (only allowed up to `maxInflate`).
   */
  read(name: string, start?: number, length?: number): Promise<Uint8Array>
  close(): Promise<void>
}

/** Largest compressed entry inflated into memory (64 MiB): a compressed storage is refused above it. */
export const MAX_INFLATE_BYTES = 64 * 1024 * 1024

function openYauzl(path: string): Promise<ZipFile> {
  return new Promise((resolve, reject) => {
    yauzl.open(path, { lazyEntries: true, autoClose: false, strictFileNames: false, validateEntrySizes: true }, (err, zip) => {
      if (err || !zip) reject(err ?? new Error('no archive'))
      else resolve(zip)
    })
  })
}

function listEntries(zip: ZipFile): Promise<Entry[]> {
  return new Promise((resolve, reject) => {
    const out: Entry[] = []
    zip.on('entry', (e: Entry) => {
      out.push(e)
      zip.readEntry()
    })
    zip.once('end', () => resolve(out))
    zip.once('error', reject)
    zip.readEntry()
  })
}

function dataStart(zip: ZipFile, entry: Entry): Promise<number> {
  return new Promise((resolve, reject) => {
    zip.readLocalFileHeader(entry, { minimal: true }, (err, header) => (err ? reject(err) : resolve(header.fileDataStart)))
  })
}

function inflateWhole(zip: ZipFile, entry: Entry): Promise<Uint8Array> {
  return new Promise((resolve, reject) => {
    zip.openReadStream(entry, (err, stream) => {
      if (err || !stream) return reject(err ?? new Error('no stream'))
      const chunks: Buffer[] = []
      stream.on('data', (c: Buffer) => chunks.push(c))
      stream.once('error', reject)
      stream.once('end', () => resolve(new Uint8Array(Buffer.concat(chunks))))
    })
  })
}

/**
 * Opens a zip archive: reads its central directory (a truncated or non-zip file fails here),
 * rejects encrypted entries and names that escape the archive, and returns ranged readers.
 *
 * @example
 * const zip = await openZip('expert_distribution_recorder.pt')
 * const pkl = await zip.read([...zip.entries.keys()].find((n) => n.endsWith('/data.pkl'))!)
 * await zip.close()
 */
export async function openZip(path: string): Promise<ZipArchive> {
  const { handle } = await openForRead(path) // FILE_NOT_FOUND with the path; the handle serves ranged reads
  let zip: ZipFile
  try {
    zip = await openYauzl(path)
  } catch (cause) {
    await handle.close()
    if ((cause as NodeJS.ErrnoException)?.code === 'ENOENT') throw notFound(path, cause)
    throw corrupt(path, 'zip', `not a readable zip archive (truncated?): ${(cause as Error).message}`, cause)
  }
  let entries: Entry[]
  try {
    entries = await listEntries(zip)
  } catch (cause) {
    zip.close()
    await handle.close()
    throw corrupt(path, 'zip central directory', `${(cause as Error).message} (truncated?)`, cause)
  }
  const byName = new Map<string, Entry>()
  const info = new Map<string, ZipEntryInfo>()
  for (const e of entries) {
    if (e.isEncrypted()) {
      zip.close()
      await handle.close()
      throw corrupt(path, `zip entry "${e.fileName}"`, 'is encrypted')
    }
    if (e.compressionMethod !== 0 && e.compressionMethod !== 8) {
      zip.close()
      await handle.close()
      throw corrupt(path, `zip entry "${e.fileName}"`, `uses compression method ${e.compressionMethod} (only stored and deflate are read)`)
    }
    byName.set(e.fileName, e)
    info.set(e.fileName, { name: e.fileName, size: e.uncompressedSize, stored: e.compressionMethod === 0 })
  }
  return makeArchive(path, zip, handle, byName, info)
}

function makeArchive(path: string, zip: ZipFile, handle: FileHandle, byName: Map<string, Entry>, info: Map<string, ZipEntryInfo>): ZipArchive {
  const starts = new Map<string, number>()
  let closed = false
  return {
    path,
    entries: info,
    async read(name, start = 0, length) {
      const e = byName.get(name)
      if (!e) throw corrupt(path, `zip entry "${name}"`, 'is missing from the archive')
      const size = e.uncompressedSize
      const len = length ?? size - start
      if (!Number.isSafeInteger(start) || !Number.isSafeInteger(len) || start < 0 || len < 0 || start + len > size) {
        throw corrupt(path, `zip entry "${name}"`, `bytes [${start}, ${start + len}) are outside its ${size} bytes`)
      }
      const where = `zip entry "${name}"`
      if (e.compressionMethod === 0) {
        let base = starts.get(name)
        if (base === undefined) {
          try {
            base = await dataStart(zip, e)
          } catch (cause) {
            throw corrupt(path, where, `local header unreadable: ${(cause as Error).message} (truncated?)`, cause)
          }
          starts.set(name, base)
        }
        return readExactly(handle, path, base + start, len, where)
      }
      if (size > MAX_INFLATE_BYTES) throw corrupt(path, where, `is compressed and ${size} bytes: only stored entries larger than ${MAX_INFLATE_BYTES} bytes can be read`)
      let whole: Uint8Array
      try {
        whole = await inflateWhole(zip, e)
      } catch (cause) {
        throw corrupt(path, where, `cannot inflate: ${(cause as Error).message}`, cause)
      }
      return whole.subarray(start, start + len)
    },
    async close() {
      if (closed) return
      closed = true
      zip.close()
      await handle.close()
    },
  }
}
