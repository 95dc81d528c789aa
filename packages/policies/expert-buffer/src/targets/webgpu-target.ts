/**
 * The WebGPU residency target: N slot buffers on a GPUDevice, each holding one expert in the
 * store's {@link ExpertLayout} (gate | up | down). Uploads use `queue.writeBuffer` (Dawn copies
 * into its own staging memory and returns) or a pool of mapped staging buffers copied with
 * `copyBufferToBuffer`, so the CPU fills one staging buffer while the GPU copies another.
 * Uploads are queue operations: any compute submitted afterwards on the same device sees them,
 * with no explicit wait, which is how loads overlap with other work.
 *
 * Lifetime: the target owns its slot, stream and staging buffers; `dispose()` destroys them.
 * The GPUDevice stays the caller's.
 */
import { StoreErrorCodes, storeError } from '../errors.js'
import type { ResidencyTarget, SlotBinding } from './residency-target.js'

// GPUBufferUsage / GPUMapMode values (spec constants), so no WebGPU globals are needed.
const MAP_WRITE = 0x0002
const COPY_SRC = 0x0004
const COPY_DST = 0x0008
const STORAGE = 0x0080

/** Options of {@link webgpuTarget}. */
export interface WebGpuTargetOptions {
  readonly slots: number
  /** Bytes of one expert (rounded up to a multiple of 4 for the buffers). */
  readonly slotBytes: number
  /** `write-buffer` (default): `queue.writeBuffer`. `staging`: mapped staging buffers + copy. */
  readonly uploadMode?: 'write-buffer' | 'staging'
  /** Staging buffers in the pool (staging mode, default 2). */
  readonly stagingBuffers?: number
  /** Label prefix of every GPU object (default `expert-buffer`). */
  readonly label?: string
  /** Extra GPUBufferUsage bits for the slot buffers (STORAGE | COPY_DST | COPY_SRC are always set). */
  readonly usage?: number
}

/** A WebGPU target; `buffers[s]` is slot s's buffer. */
export interface WebGpuTarget extends ResidencyTarget {
  readonly kind: 'webgpu'
  readonly device: GPUDevice
  readonly buffers: readonly GPUBuffer[]
  /** The buffer a bypassed expert is streamed into (created on first use). */
  readonly streamBuffer: GPUBuffer | undefined
}

/**
 * Allocates `slots` storage buffers of `slotBytes` on `device`.
 * @example
 * const target = webgpuTarget(device, { slots: 4, slotBytes: layout.bytes })
 * const store = new ExpertBufferStore({ experts: 8, slots: 4, weights, target: () => target })
 */
export function webgpuTarget(device: GPUDevice, options: WebGpuTargetOptions): WebGpuTarget {
  const size = Math.ceil(options.slotBytes / 4) * 4
  const label = options.label ?? 'expert-buffer'
  if (size > device.limits.maxBufferSize) {
    throw storeError(StoreErrorCodes.STORE_WEIGHTS_INVALID, `an expert is ${options.slotBytes} bytes, above this device's maxBufferSize ${device.limits.maxBufferSize}`, {
      slotBytes: options.slotBytes,
    })
  }
  const usage = STORAGE | COPY_DST | COPY_SRC | (options.usage ?? 0)
  const buffers = Array.from({ length: options.slots }, (_, s) => device.createBuffer({ label: `${label}:slot${s}`, size, usage }))
  let streamBuffer: GPUBuffer | undefined
  const mode = options.uploadMode ?? 'write-buffer'
  const pool = new StagingPool(device, size, options.stagingBuffers ?? 2, label)

  const write = async (dst: GPUBuffer, bytes: Uint8Array) => {
    if (bytes.byteLength > size) {
      throw storeError(StoreErrorCodes.STORE_WEIGHTS_INVALID, `expert bytes (${bytes.byteLength}) exceed the slot size (${size})`, { slotBytes: size })
    }
    if (mode === 'write-buffer') {
      const aligned = bytes.byteLength % 4 === 0 ? bytes : padTo4(bytes)
      device.queue.writeBuffer(dst, 0, aligned.buffer, aligned.byteOffset, aligned.byteLength)
    } else {
      await pool.copy(dst, bytes)
    }
  }

  return {
    kind: 'webgpu',
    device,
    slots: options.slots,
    slotBytes: options.slotBytes,
    buffers,
    get streamBuffer() {
      return streamBuffer
    },
    upload: (slot, _expert, bytes) => write(buffers[slot]!, bytes),
    stream(_expert, bytes) {
      streamBuffer ??= device.createBuffer({ label: `${label}:stream`, size, usage })
      return write(streamBuffer, bytes)
    },
    binding(slot, expert, dev): SlotBinding {
      const buffer = slot < 0 ? streamBuffer : buffers[slot]
      return buffer ? { device: dev, slot, expert, buffer } : { device: dev, slot, expert }
    },
    flush: () => keepAlive(device.queue.onSubmittedWorkDone()),
    dispose() {
      for (const b of buffers) b.destroy()
      streamBuffer?.destroy()
      pool.dispose()
    },
  }
}

/**
 * Awaits a WebGPU promise while holding the Node event loop open: Dawn's Node binding does not
 * count its pending callbacks as loop work, so a process awaiting only GPU work would exit.
 */
export function keepAlive<T>(promise: Promise<T>): Promise<T> {
  if (typeof setInterval !== 'function') return promise
  const timer = setInterval(() => {}, 50)
  return promise.finally(() => clearInterval(timer))
}

function padTo4(bytes: Uint8Array): Uint8Array {
  const out = new Uint8Array(Math.ceil(bytes.byteLength / 4) * 4)
  out.set(bytes)
  return out
}

/**
 * Mapped staging buffers (MAP_WRITE | COPY_SRC, mapped at creation): fill, unmap, copy to the
 * slot, and destroy once the queue has finished the copy. At most `max` are in flight: the CPU
 * fills the next one while the GPU copies the previous. (Re-mapping a staging buffer with
 * `mapAsync` would avoid the allocation, but Dawn's Node binding does not keep the event loop
 * alive while a map is pending, so a process can exit mid-upload.)
 */
class StagingPool {
  #inFlight: Promise<void>[] = []
  #live = new Set<GPUBuffer>()
  #count = 0
  constructor(
    private readonly device: GPUDevice,
    private readonly size: number,
    private readonly max: number,
    private readonly label: string,
  ) {}

  async copy(dst: GPUBuffer, bytes: Uint8Array): Promise<void> {
    while (this.#inFlight.length >= Math.max(1, this.max)) await keepAlive(this.#inFlight.shift()!)
    const size = Math.ceil(bytes.byteLength / 4) * 4
    const staging = this.device.createBuffer({ label: `${this.label}:staging${this.#count++ % this.max}`, size, usage: MAP_WRITE | COPY_SRC, mappedAtCreation: true })
    this.#live.add(staging)
    new Uint8Array(staging.getMappedRange(0, size)).set(bytes)
    staging.unmap()
    const enc = this.device.createCommandEncoder({ label: `${this.label}:upload` })
    enc.copyBufferToBuffer(staging, 0, dst, 0, size)
    this.device.queue.submit([enc.finish()])
    const done = keepAlive(this.device.queue.onSubmittedWorkDone()).then(
      () => {
        staging.destroy()
        this.#live.delete(staging)
      },
      () => {},
    )
    this.#inFlight.push(done)
  }

  dispose(): void {
    for (const b of this.#live) b.destroy()
    this.#live.clear()
    this.#inFlight = []
  }
}
