import { MoeError } from '@moe-route/core'
/**
 * A device with its buffer pool, uniform cache and optional profiler, and a recorder that
 * encodes kernel dispatches, copies and clears into one command buffer.
 */
import type { AcquiredDevice, DeviceFeatures } from './device.js'
import { BufferPool, READBACK_USAGE } from './buffer-pool.js'
import { BufferUsage, MAP_READ_MODE, STORAGE_RW } from './constants.js'
import { ProgramCache, type Dispatch, type KernelProgram } from './program.js'
import { Profiler } from './profiler.js'

/**
 * Bind groups kept per pipeline, most recently used first: a decode loop needs one or two; a
 * server cycling through batch sizes one set per size bucket (a hit is found at the front, a
 * miss scans them all, a few ns each).
 */
const BIND_GROUPS_PER_PIPELINE = 64

/** Whether two word arrays hold the same words (uniform contents). */
export function sameWords(a: Uint32Array, b: Uint32Array): boolean {
  if (a.length !== b.length) return false
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false
  return true
}

/** Everything the kernels need to run on one device. Lifetime: that of the device. */
export class GpuContext {
  readonly device: GPUDevice
  readonly features: DeviceFeatures
  readonly adapterName: string
  /** The adapter's `device` string (e.g. `nvidia-h100-80gb-hbm3`; empty where the adapter does not say): per-GPU kernel plans are keyed by it. */
  readonly adapterDevice: string
  readonly pool: BufferPool
  readonly profiler: Profiler | null

  /**
   * @param options `profile`: time kernels with timestamp queries; `maxPooledBytes`: free
   * buffers kept for reuse (default 2 GiB; the least recently released go first past it)
   */
  constructor(acquired: AcquiredDevice, options: { profile?: boolean; maxPooledBytes?: number } = {}) {
    this.device = acquired.device
    this.features = acquired.features
    this.adapterName = acquired.adapterName
    this.adapterDevice = typeof acquired.adapterInfo?.device === 'string' ? acquired.adapterInfo.device : ''
    this.pool = new BufferPool(this.device, options.maxPooledBytes)
    this.profiler = options.profile && acquired.features.timestampQuery ? new Profiler(this.device) : null
    // A validation error (an invalid shader or pipeline) would otherwise only be logged while
    // the kernels silently compute nothing: keep it and fail the next submit with it.
    this.device.onuncapturederror = (e: GPUUncapturedErrorEvent) => {
      this.pendingError ??= e.error?.message ?? String(e)
    }
  }

  private pendingError: string | undefined

  /** Throws MOE_ROUTE_ERR_BACKEND_KERNEL_FAILED with the first GPU error since the last check. */
  checkErrors(where: string): void {
    const message = this.pendingError
    if (message === undefined) return
    this.pendingError = undefined
    throw new MoeError('MOE_ROUTE_ERR_BACKEND_KERNEL_FAILED', `GPU error during ${where}: ${message.split('\n')[0]}`, { plugin: 'webgpu', gpuMessage: message })
  }

  /** Uniform buffers by a hash of their words (entries compared word by word), in insertion order. */
  private readonly uniformCache = new Map<number, { readonly words: Uint32Array; readonly buffer: GPUBuffer }[]>()
  private uniformCount = 0

  /** A uniform buffer holding `data`. Identical contents share one immutable buffer (bounded cache). */
  uniform(data: Uint32Array, label: string): GPUBuffer {
    // a numeric hash, not a string key: every kernel of every batch looks its uniforms up
    let h = data.length
    for (let i = 0; i < data.length; i++) h = Math.imul(h ^ data[i], 0x01000193)
    let bucket = this.uniformCache.get(h)
    if (bucket) for (let j = 0; j < bucket.length; j++) if (sameWords(bucket[j].words, data)) return bucket[j].buffer
    if (this.uniformCount >= 512) {
      const [first, old] = this.uniformCache.entries().next().value as [number, { buffer: GPUBuffer }[]]
      this.uniformCache.delete(first)
      this.uniformCount -= old.length
      if (first === h) bucket = undefined
      // destroying is deferred to GC: an encoder being recorded (or a cached bind group) may still reference it
    }
    const buffer = this.device.createBuffer({ label: `${label} uniforms`, size: data.byteLength, usage: BufferUsage.UNIFORM | BufferUsage.COPY_DST })
    this.device.queue.writeBuffer(buffer, 0, data)
    if (!bucket) this.uniformCache.set(h, (bucket = []))
    bucket.push({ words: data.slice(), buffer })
    this.uniformCount++
    return buffer
  }

  /** Bind groups per pipeline: the buffers each binds (compared by identity) and the group, most recently made first. */
  private bindGroups = new WeakMap<GPUComputePipeline, { readonly buffers: GPUBuffer[]; readonly group: GPUBindGroup }[]>()

  /**
   * The bind group of `pipeline` over `buffers` (binding i = buffers[i]), then `extra` when
   * given (the uniforms of `Recorder.run`), cached per pipeline (`auto` layouts belong to one
   * pipeline) by the buffers' identity: a decode loop over pooled buffers re-encodes without
   * creating any. A buffer object is never reused for another allocation, so a cached group
   * binds exactly the buffers asked for (at most 64 per pipeline, `BIND_GROUPS_PER_PIPELINE`).
   */
  bindGroup(pipeline: GPUComputePipeline, label: string, buffers: readonly GPUBuffer[], extra?: GPUBuffer): GPUBindGroup {
    const n = buffers.length + (extra ? 1 : 0)
    let list = this.bindGroups.get(pipeline)
    if (!list) this.bindGroups.set(pipeline, (list = []))
    for (let j = 0; j < list.length; j++) {
      const e = list[j].buffers
      if (e.length !== n || (extra && e[n - 1] !== extra)) continue
      let i = 0
      while (i < buffers.length && e[i] === buffers[i]) i++
      if (i < buffers.length) continue
      const hit = list[j]
      // most recent first: a decode loop finds its groups at the front
      if (j > 0) {
        list[j] = list[0]
        list[0] = hit
      }
      return hit.group
    }
    const bound = extra ? [...buffers, extra] : buffers.slice()
    const group = this.device.createBindGroup({ label, layout: pipeline.getBindGroupLayout(0), entries: bound.map((buffer, binding) => ({ binding, resource: { buffer } })) })
    list.unshift({ buffers: bound, group })
    if (list.length > BIND_GROUPS_PER_PIPELINE) list.pop()
    return group
  }

  /** A storage buffer from the pool (release it with `pool.release` after submit). */
  storage(bytes: number, label: string, extraUsage = 0): GPUBuffer {
    return this.pool.acquire(bytes, STORAGE_RW | extraUsage, label)
  }

  /** Uploads a typed array into a pooled storage buffer. */
  upload(data: ArrayBufferView, label: string, minBytes = 0): GPUBuffer {
    const buf = this.storage(Math.max(data.byteLength, minBytes, 16), label)
    if (data.byteLength > 0) this.device.queue.writeBuffer(buf, 0, data.buffer, data.byteOffset, data.byteLength)
    return buf
  }

  /** Starts recording a command buffer (`profile: false`: never timed, so `submitNoWait` is allowed on a profiling context). */
  recorder(label: string, options: { profile?: boolean } = {}): Recorder {
    return new Recorder(this, label, options.profile !== false)
  }

  /** Drops cached uniforms and pooled buffers (the device stays). */
  dispose(): void {
    this.pool.clear()
    for (const bucket of this.uniformCache.values()) for (const u of bucket) u.buffer.destroy()
    this.uniformCache.clear()
    this.uniformCount = 0
    this.bindGroups = new WeakMap()
    this.profiler?.destroy()
  }
}

/** Encodes dispatches into one command encoder; `submit()` sends it and returns readbacks. */
export class Recorder {
  readonly encoder: GPUCommandEncoder
  private pass: GPUComputePassEncoder | null = null
  private readonly reads: { src: GPUBuffer; bytes: number; dst: GPUBuffer }[] = []
  private readonly transient: GPUBuffer[] = []
  private profiled = false
  /** Clears recorded ahead of everything else (`clearFirst` after other commands), submitted before `encoder`. */
  private prologue: GPUCommandEncoder | null = null
  /** Whether `encoder` holds anything but clears. */
  private recorded = false

  constructor(
    readonly ctx: GpuContext,
    readonly label: string,
    private readonly timed = true,
  ) {
    this.encoder = ctx.device.createCommandEncoder({ label })
  }

  /**
   * Stage kernels are timed under while set (a pipeline stage such as `policy:capacity-drop`):
   * each kernel's time lands under `<stage>|<kernel>`; null: under the kernel's name alone.
   */
  stage: string | null = null

  /** Runs `program` with `params` over `buffers` (bindings 0..n-1; uniforms at binding n). */
  run<P>(program: KernelProgram<P>, params: P, buffers: readonly GPUBuffer[]): void {
    const pipeline = ProgramCache.get(this.ctx.device, program)
    const { dispatch, uniforms } = program.getRunData(params)
    const bindGroup = this.ctx.bindGroup(pipeline, program.name, buffers, this.ctx.uniform(uniforms, program.name))
    this.dispatch(program.name, pipeline, bindGroup, dispatch)
  }

  /** Records one dispatch of a compiled pipeline (timed under `stage` or `name` when profiling). */
  dispatch(name: string, pipeline: GPUComputePipeline, bindGroup: GPUBindGroup, dispatch: Dispatch): void {
    const profiler = this.timed ? this.ctx.profiler : null
    this.recorded = true
    let pass: GPUComputePassEncoder
    if (profiler) {
      this.endPass()
      const timestampWrites = profiler.next(this.stage ? `${this.stage}|${name}` : name)
      if (timestampWrites) this.profiled = true
      pass = this.encoder.beginComputePass({ label: name, ...(timestampWrites ? { timestampWrites } : {}) })
    } else {
      pass = this.pass ??= this.encoder.beginComputePass({ label: this.label })
    }
    pass.setPipeline(pipeline)
    pass.setBindGroup(0, bindGroup)
    if (Array.isArray(dispatch)) {
      const [x, y, z] = dispatch as readonly [number, number, number]
      if (x > 0 && y > 0 && z > 0) pass.dispatchWorkgroups(x, y, z)
    } else {
      const d = dispatch as { indirect: GPUBuffer; offset: number }
      pass.dispatchWorkgroupsIndirect(d.indirect, d.offset)
    }
    if (profiler) pass.end()
  }

  /** Copies `bytes` bytes between buffers (outside compute passes). */
  copy(src: GPUBuffer, srcOffset: number, dst: GPUBuffer, dstOffset: number, bytes: number): void {
    this.endPass()
    this.recorded = true
    if (bytes > 0) this.encoder.copyBufferToBuffer(src, srcOffset, dst, dstOffset, Math.ceil(bytes / 4) * 4)
  }

  private endPass(): void {
    this.pass?.end()
    this.pass = null
  }

  /** Zeroes `bytes` bytes of `buffer` (a multiple of 4), in order with what is recorded. */
  clear(buffer: GPUBuffer, bytes?: number): void {
    this.endPass()
    this.encoder.clearBuffer(buffer, 0, bytes === undefined ? undefined : Math.ceil(bytes / 4) * 4)
  }

  /**
   * Zeroes `bytes` bytes of `buffer` before everything this recorder records, so the kernels
   * around it stay in one compute pass (a clear in between ends the pass: ~2.6 µs more per
   * clear on an H100, bench/dispatch-cost-probe.ts). Only for a buffer no command recorded
   * earlier in this recorder uses (one acquired for this batch). While nothing but clears is
   * recorded it goes straight into the encoder; after that into a second command buffer
   * submitted first (one more encoder on the host).
   */
  clearFirst(buffer: GPUBuffer, bytes?: number): void {
    const size = bytes === undefined ? undefined : Math.ceil(bytes / 4) * 4
    if (!this.recorded) {
      this.encoder.clearBuffer(buffer, 0, size)
      return
    }
    this.prologue ??= this.ctx.device.createCommandEncoder({ label: `${this.label} clears` })
    this.prologue.clearBuffer(buffer, 0, size)
  }

  /** The recorded command buffers in submit order (the prologue's clears first). */
  private finish(): GPUCommandBuffer[] {
    const main = this.encoder.finish({ label: this.label })
    return this.prologue ? [this.prologue.finish({ label: `${this.label} clears` }), main] : [main]
  }

  /**
   * Submits without waiting for the GPU (no readbacks allowed): for back-to-back layer calls
   * whose outputs stay on the device. Each pending `onSubmittedWorkDone` promise costs the
   * Node binding event polling on the JS thread, so a stream of awaited submits becomes
   * CPU-bound; wait once at the end instead (`device.queue.onSubmittedWorkDone()`).
   * Validation errors of this submit surface at the next waited submit.
   */
  submitNoWait(): void {
    if (this.reads.length > 0 || this.profiled) {
      throw new MoeError('MOE_ROUTE_ERR_INPUT_INVALID', 'submitNoWait() returns neither readbacks nor kernel times; use submit()', { plugin: 'webgpu' })
    }
    this.endPass()
    this.ctx.device.queue.submit(this.finish())
    this.ctx.pool.release(...this.transient)
    this.ctx.checkErrors(this.label)
  }

  /** Copies `src` into a fresh readback buffer when the command buffer is submitted. */
  read(src: GPUBuffer, bytes: number): number {
    this.endPass()
    this.recorded = true
    const size = Math.max(4, Math.ceil(bytes / 4) * 4)
    const dst = this.ctx.pool.acquire(size, READBACK_USAGE, `${this.label} readback`)
    this.encoder.copyBufferToBuffer(src, 0, dst, 0, size)
    this.reads.push({ src, bytes, dst })
    return this.reads.length - 1
  }

  /** Buffers to give back to the pool after submit. */
  releaseAfterSubmit(...buffers: GPUBuffer[]): void {
    this.transient.push(...buffers)
  }

  /** Submits and waits for the readbacks; returns their bytes and the kernel times (when profiling). */
  async submit(options: { wait?: boolean } = {}): Promise<{ reads: ArrayBuffer[]; kernels?: Record<string, number> }> {
    if (options.wait === false && this.reads.length === 0 && !this.profiled) {
      this.submitNoWait()
      return { reads: [] }
    }
    this.endPass()
    const { ctx } = this
    const resolved = this.profiled && ctx.profiler ? ctx.profiler.encodeResolve(this.encoder) : false
    ctx.device.queue.submit(this.finish())
    ctx.pool.release(...this.transient)
    const reads = await Promise.all(
      this.reads.map(async ({ dst, bytes }) => {
        await dst.mapAsync(MAP_READ_MODE, 0, Math.max(4, Math.ceil(bytes / 4) * 4))
        const copy = dst.getMappedRange(0, Math.max(4, Math.ceil(bytes / 4) * 4)).slice(0, bytes)
        dst.unmap()
        ctx.pool.release(dst)
        return copy
      }),
    )
    if (resolved && ctx.profiler) {
      const kernels = await ctx.profiler.collect()
      ctx.checkErrors(this.label)
      return { reads, kernels }
    }
    if (this.reads.length === 0) await ctx.device.queue.onSubmittedWorkDone()
    ctx.checkErrors(this.label)
    return { reads }
  }
}
