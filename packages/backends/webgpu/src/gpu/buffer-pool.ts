/**
 * Buffer pool: free lists per (usage, size bucket). Sizes round up to 16 bytes, then to the
 * next bucket (powers of two and 1.5× steps), so a batch of a slightly different size reuses
 * the last batch's buffers. A released buffer may be handed out again right after the
 * `queue.submit` that last used it: the queue orders later writes after earlier work.
 */
import { BufferUsage } from './constants.js'

/** Bucket size for a request of `bytes` bytes. */
export function bucketSize(bytes: number): number {
  const b = Math.max(16, Math.ceil(bytes / 16) * 16)
  if (b <= 256) return b
  const p = 2 ** Math.floor(Math.log2(b))
  if (b === p) return b
  if (b <= p * 1.5) return Math.ceil((p * 1.5) / 16) * 16
  return p * 2
}

/** Free-list key of (usage, bucket size): usage flags are below 2^16, sizes below 2^37 (exact in a double). */
const freeKey = (usage: number, size: number): number => size * 65536 + usage

/** Free buffers of a bucket searched (most recently released first) for one last used under the requested label. */
const AFFINITY_SCAN = 16

/** Default bytes of free buffers a pool keeps (least recently released evicted first). */
export const DEFAULT_MAX_POOLED_BYTES = 2 ** 31

/**
 * Pooled GPU buffers of one device. Free buffers are kept up to `maxPooledBytes`; past it the
 * least recently released ones are destroyed first, so the working set of the current batch
 * shape stays pooled while buffers of earlier shapes go. (Destroying the buffer just released
 * instead made every large batch re-create — and Dawn re-clear — its biggest buffers once the
 * pool held another shape's: an int8 Mixtral layer at T ≥ 2048 spent milliseconds per call on it.)
 */
export class BufferPool {
  /** Free lists by `freeKey(usage, size)` (a number: cheaper to hash than a string, per acquire and release of every call), most recently released last. */
  private readonly free = new Map<number, Pooled[]>()
  /** Each pooled buffer's entry, kept on the JS side (reading `usage` or writing `label` crosses into the native binding). */
  private readonly meta = new WeakMap<GPUBuffer, Pooled>()
  private pooledBytes = 0
  /** Release counter: the order of free buffers for eviction (no ordered set to update per acquire and release). */
  private releases = 0
  /** Buffers created since construction (diagnostics). */
  created = 0
  /** Free buffers destroyed to stay within `maxPooledBytes` (diagnostics). */
  evicted = 0

  /**
   * @param device the device buffers are created on
   * @param maxPooledBytes free bytes kept for reuse; beyond that, the least recently released are destroyed
   */
  constructor(
    readonly device: GPUDevice,
    readonly maxPooledBytes = DEFAULT_MAX_POOLED_BYTES,
  ) {}

  /** A buffer of at least `bytes` bytes with `usage`, labelled `label`. */
  acquire(bytes: number, usage: number, label: string): GPUBuffer {
    const size = bucketSize(bytes)
    const key = freeKey(usage, size)
    const list = this.free.get(key)
    if (list !== undefined && list.length > 0) {
      // prefer the most recently released buffer that last served under this label: a batch
      // acquires several buffers of one bucket (ids, weights, scratch, ...) and releases them
      // in another order, so plain LIFO handed each role another role's buffer every batch —
      // a native relabel per buffer (about half of the pipeline's acquires) and new bind-group keys
      const last = list.length - 1
      const stop = Math.max(0, list.length - AFFINITY_SCAN)
      let i = last
      while (i >= stop && list[i].label !== label) i--
      const m = i < stop || i === last ? list.pop()! : list.splice(i, 1)[0]
      m.free = false
      this.pooledBytes -= size
      // relabel only when the role changed
      if (m.label !== label) m.buffer.label = m.label = label
      return m.buffer
    }
    const buffer = this.device.createBuffer({ label, size, usage })
    this.meta.set(buffer, { buffer, size, key, label, free: false, released: 0 })
    this.created++
    return buffer
  }

  /** Gives buffers back for reuse (after the submit that uses them). */
  release(...buffers: GPUBuffer[]): void {
    for (let i = 0; i < buffers.length; i++) this.releaseOne(buffers[i])
  }

  /** Gives one buffer back (see {@link release}); a buffer the pool did not make, or one already free, is ignored. */
  releaseOne(b: GPUBuffer): void {
    const m = this.meta.get(b)
    if (m === undefined || m.free) return
    if (m.size > this.maxPooledBytes) {
      b.destroy()
      return
    }
    let list = this.free.get(m.key)
    if (!list) this.free.set(m.key, (list = []))
    m.free = true
    m.released = ++this.releases
    list.push(m)
    this.pooledBytes += m.size
    while (this.pooledBytes > this.maxPooledBytes) this.evictOldest()
  }

  /** Bytes of free buffers held. */
  get bytes(): number {
    return this.pooledBytes
  }

  /** Destroys the least recently released free buffer (a scan: only past the cap). */
  private evictOldest(): void {
    let oldest: Pooled | null = null
    let from: Pooled[] | null = null
    for (const list of this.free.values()) {
      // each list is in release order: its first entry is its oldest
      if (list.length > 0 && (oldest === null || list[0].released < oldest.released)) {
        oldest = list[0]
        from = list
      }
    }
    if (!oldest || !from) return
    from.shift()
    oldest.free = false
    this.meta.delete(oldest.buffer)
    this.pooledBytes -= oldest.size
    this.evicted++
    oldest.buffer.destroy()
  }

  /** Destroys every pooled buffer. */
  clear(): void {
    for (const list of this.free.values()) {
      for (const m of list) {
        this.meta.delete(m.buffer)
        m.buffer.destroy()
      }
    }
    this.free.clear()
    this.pooledBytes = 0
  }
}

/** A buffer the pool made: its bucket size, free-list key, last label, whether it is free, and when it was last released. */
interface Pooled {
  readonly buffer: GPUBuffer
  readonly size: number
  readonly key: number
  label: string
  free: boolean
  released: number
}

/** Usage of buffers read back to the host. */
export const READBACK_USAGE = BufferUsage.MAP_READ | BufferUsage.COPY_DST
