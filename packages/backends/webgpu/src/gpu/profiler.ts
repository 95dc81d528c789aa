/**
 * Optional kernel timing with timestamp queries. Constructed only when the device has
 * `timestamp-query`: each profiled dispatch gets its own compute pass with
 * `timestampWrites`, and `collect()` resolves, maps and sums GPU nanoseconds per kernel name.
 */
import { BufferUsage, MAP_READ_MODE } from './constants.js'

/** Timestamp-query profiler for one submission at a time. */
export class Profiler {
  private readonly querySet: GPUQuerySet
  private readonly resolve: GPUBuffer
  private readonly readback: GPUBuffer
  private names: string[] = []

  /** @param capacity passes that can be timed per submission */
  constructor(
    readonly device: GPUDevice,
    readonly capacity = 128,
  ) {
    this.querySet = device.createQuerySet({ label: 'moe-route profiler', type: 'timestamp', count: capacity * 2 })
    this.resolve = device.createBuffer({ label: 'moe-route profiler resolve', size: capacity * 16, usage: BufferUsage.QUERY_RESOLVE | BufferUsage.COPY_SRC })
    this.readback = device.createBuffer({ label: 'moe-route profiler readback', size: capacity * 16, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST })
  }

  /** `timestampWrites` for the next pass, or undefined when the query set is full. */
  next(name: string): GPUComputePassTimestampWrites | undefined {
    const i = this.names.length
    if (i >= this.capacity) return undefined
    this.names.push(name)
    return { querySet: this.querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 }
  }

  /** Records the resolve and copy; call once at the end of the encoder. */
  encodeResolve(encoder: GPUCommandEncoder): boolean {
    const n = this.names.length
    if (n === 0) return false
    encoder.resolveQuerySet(this.querySet, 0, 2 * n, this.resolve, 0)
    encoder.copyBufferToBuffer(this.resolve, 0, this.readback, 0, 16 * n)
    return true
  }

  /** Milliseconds per kernel name of the last submission (after it was submitted). */
  async collect(): Promise<Record<string, number>> {
    const names = this.names
    this.names = []
    if (names.length === 0) return {}
    await this.readback.mapAsync(MAP_READ_MODE, 0, 16 * names.length)
    const ts = new BigUint64Array(this.readback.getMappedRange(0, 16 * names.length).slice(0))
    this.readback.unmap()
    const out: Record<string, number> = {}
    names.forEach((name, i) => {
      const dt = Number(ts[2 * i + 1] - ts[2 * i]) / 1e6
      out[name] = (out[name] ?? 0) + (dt > 0 && dt < 1e6 ? dt : 0)
    })
    return out
  }

  /** Releases the query set and buffers. */
  destroy(): void {
    this.querySet.destroy()
    this.resolve.destroy()
    this.readback.destroy()
  }
}
