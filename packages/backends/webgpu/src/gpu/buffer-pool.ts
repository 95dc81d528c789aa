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
  /** Free lists by `freeKey(usage, size)` (a number: cheaper to hash than a string, per acquire and release of every call). */
  private readonly free = new Map<number, GPUBuffer[]>()
  /** Bucket size, free-list key and last label of each pooled buffer, kept on the JS side (reading `usage` or writing `label` crosses into the native binding). */
  private readonly meta = new WeakMap<GPUBuffer, { size: number; key: number; label: string }>()
  /** Free buffers in release order (oldest first). */
  private readonly order = new Set<GPUBuffer>()
  private pooledBytes = 0
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
    const reused = this.free.get(key)?.pop()
    if (reused) {
      this.pooledBytes -= size
      this.order.delete(reused)
      const m = this.meta.get(reused)!
      // relabel only when the role changed (a decode loop reuses each buffer in the same role)
      if (m.label !== label) reused.label = m.label = label
      return reused
    }
    const buffer = this.device.createBuffer({ label, size, usage })
    this.meta.set(buffer, { size, key, label })
    this.created++
    return buffer
  }

  /** Gives buffers back for reuse (after the submit that uses them). */
  release(...buffers: GPUBuffer[]): void {
    for (const b of buffers) {
      const m = this.meta.get(b)
      if (m === undefined || this.order.has(b)) continue
      if (m.size > this.maxPooledBytes) {
        b.destroy()
        continue
      }
      let list = this.free.get(m.key)
      if (!list) this.free.set(m.key, (list = []))
      list.push(b)
      this.order.add(b)
      this.pooledBytes += m.size
      while (this.pooledBytes > this.maxPooledBytes) this.evictOldest()
    }
  }

  /** Bytes of free buffers held. */
  get bytes(): number {
    return this.pooledBytes
  }

  private evictOldest(): void {
    const oldest = this.order.values().next().value as GPUBuffer
    const { size, key } = this.meta.get(oldest)!
    const list = this.free.get(key)!
    list.splice(list.indexOf(oldest), 1)
    this.order.delete(oldest)
    this.pooledBytes -= size
    this.evicted++
    oldest.destroy()
  }

  /** Destroys every pooled buffer. */
  clear(): void {
    for (const list of this.free.values()) for (const b of list) b.destroy()
    this.free.clear()
    this.order.clear()
    this.pooledBytes = 0
  }
}

/** Usage of buffers read back to the host. */
export const READBACK_USAGE = BufferUsage.MAP_READ | BufferUsage.COPY_DST
