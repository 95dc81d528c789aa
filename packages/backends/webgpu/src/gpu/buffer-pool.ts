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

/** Pooled GPU buffers of one device. */
export class BufferPool {
  private readonly free = new Map<string, GPUBuffer[]>()
  private readonly sizeOf = new WeakMap<GPUBuffer, number>()
  private pooledBytes = 0
  /** Buffers created since construction (diagnostics). */
  created = 0

  /**
   * @param device the device buffers are created on
   * @param maxPooledBytes free bytes kept for reuse; beyond that, released buffers are destroyed
   */
  constructor(
    readonly device: GPUDevice,
    readonly maxPooledBytes = 1 << 30,
  ) {}

  /** A buffer of at least `bytes` bytes with `usage`, labelled `label`. */
  acquire(bytes: number, usage: number, label: string): GPUBuffer {
    const size = bucketSize(bytes)
    const list = this.free.get(`${usage}:${size}`)
    const reused = list?.pop()
    if (reused) {
      this.pooledBytes -= size
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
      if (size === undefined) continue
      if (this.pooledBytes + size > this.maxPooledBytes) {
        b.destroy()
        continue
      }
      const key = `${b.usage}:${size}`
      let list = this.free.get(key)
      if (!list) this.free.set(key, (list = []))
      list.push(b)
      this.pooledBytes += size
    }
  }

  /** Destroys every pooled buffer. */
  clear(): void {
    for (const list of this.free.values()) for (const b of list) b.destroy()
    this.free.clear()
    this.pooledBytes = 0
  }
}

/** Usage of buffers read back to the host. */
export const READBACK_USAGE = BufferUsage.MAP_READ | BufferUsage.COPY_DST
