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
  private readonly free = new Map<string, GPUBuffer[]>()
  private readonly sizeOf = new WeakMap<GPUBuffer, number>()
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
    const list = this.free.get(`${usage}:${size}`)
    const reused = list?.pop()
    if (reused) {
      this.pooledBytes -= size
      this.order.delete(reused)
      reused.label = label
      return reused
    }
    const buffer = this.device.createBuffer({ label, size, usage })
    this.sizeOf.set(buffer, size)
    this.created++
    return buffer
  }

  /** Gives buffers back for reuse (after the submit that uses them). */
  release(...buffers: GPUBuffer[]): void {
    for (const b of buffers) {
      const size = this.sizeOf.get(b)
      if (size === undefined || this.order.has(b)) continue
      if (size > this.maxPooledBytes) {
        b.destroy()
        continue
      }
      const key = `${b.usage}:${size}`
      let list = this.free.get(key)
      if (!list) this.free.set(key, (list = []))
      list.push(b)
      this.order.add(b)
      this.pooledBytes += size
      while (this.pooledBytes > this.maxPooledBytes) this.evictOldest()
    }
  }

  /** Bytes of free buffers held. */
  get bytes(): number {
    return this.pooledBytes
  }

  private evictOldest(): void {
    const oldest = this.order.values().next().value as GPUBuffer
    const size = this.sizeOf.get(oldest)!
    const list = this.free.get(`${oldest.usage}:${size}`)!
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
