/**
 * Expert weights on the device: one buffer per matrix kind holding every expert
 * (gate E×I×H, up E×I×H, down E×H×I, `nn.Linear` layout), f32 or f16 packed two per u32,
 * plus the f32 router (E×H).
 */
import { ErrorCodes, MoeError, type ExpertWeights, type LayerWeights, type ModelShape } from '@moe-route/core'
import { MAP_READ_MODE, STORAGE_RW, BufferUsage } from './gpu/constants.js'
import type { GpuContext } from './gpu/context.js'
import { initWeightsProgram } from './kernels/init-weights/init-weights.program.js'
import type { WeightsDtype } from './kernels/expert-ffn/expert-ffn.program.js'
import { packF16, unpackF16 } from './f16.js'

/** A layer's weights resident on one device. Lifetime: until `destroy()` or the device is lost. */
export interface DeviceLayerWeights {
  readonly shape: ModelShape
  readonly dtype: WeightsDtype
  readonly device: GPUDevice
  /** Router weight E×H, f32. */
  readonly router: GPUBuffer
  readonly gate: GPUBuffer
  readonly up: GPUBuffer
  readonly down: GPUBuffer
  /** Bytes of one expert's three matrices in this dtype (what decoding streams per active expert). */
  readonly expertBytes: number
  /** Frees the buffers. */
  destroy(): void
}

/** Throws unless the shape fits the kernels and the device limits. */
export function checkShape(shape: ModelShape, dtype: WeightsDtype, device: GPUDevice): void {
  const { hidden: H, intermediate: I, experts: E, topK } = shape
  if (H % 16 !== 0 || I % 16 !== 0) {
    throw new MoeError(ErrorCodes.SHAPE_MISMATCH, `the WebGPU kernels need hidden and intermediate sizes that are multiples of 16 (got H ${H}, I ${I})`, { plugin: 'webgpu' })
  }
  if (E > 256 || topK > 16 || topK < 1) {
    throw new MoeError(ErrorCodes.INPUT_INVALID, `the WebGPU kernels support up to 256 experts and top-k 1..16 (got E ${E}, k ${topK})`, { plugin: 'webgpu' })
  }
  const bytes = E * I * H * (dtype === 'f16' ? 2 : 4)
  const limit = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize)
  if (bytes > limit) {
    throw new MoeError(
      ErrorCodes.BACKEND_UNAVAILABLE,
      `one expert matrix kind of this layer needs ${bytes} bytes, over the device's storage-buffer limit of ${limit}; use weightsDtype 'f16' or a device with a larger limit`,
      { plugin: 'webgpu', bytes, limit },
    )
  }
}

/**
 * Allocates (uninitialised) device buffers for a layer's weights: `shape.experts` experts'
 * matrices, and a router of `routerExperts` rows (default `shape.experts`; an expert store's
 * slot weights hold fewer experts than the router routes to).
 */
export function allocateLayerWeights(ctx: GpuContext, shape: ModelShape, dtype: WeightsDtype, label: string, routerExperts = shape.experts): DeviceLayerWeights {
  const { hidden: H, intermediate: I, experts: E } = shape
  checkShape(shape, dtype, ctx.device)
  const per = I * H * (dtype === 'f16' ? 2 : 4)
  const mk = (what: string, size: number) => ctx.device.createBuffer({ label: `${label} ${what}`, size, usage: STORAGE_RW })
  const router = mk('router', routerExperts * H * 4)
  const gate = mk('gate', E * per)
  const up = mk('up', E * per)
  const down = mk('down', E * per)
  return {
    shape,
    dtype,
    device: ctx.device,
    router,
    gate,
    up,
    down,
    expertBytes: 3 * per,
    destroy() {
      for (const b of [router, gate, up, down]) b.destroy()
    },
  }
}

/** Uploads host weights (f32, or packed to f16 on the host with round-to-nearest-even). */
export function uploadLayerWeights(ctx: GpuContext, weights: LayerWeights, dtype: WeightsDtype): DeviceLayerWeights {
  const { hidden: H, intermediate: I, experts: E } = weights.shape
  const dw = allocateLayerWeights(ctx, weights.shape, dtype, 'moe-route weights')
  const q = ctx.device.queue
  q.writeBuffer(dw.router, 0, weights.router.buffer, weights.router.byteOffset, weights.router.byteLength)
  const per = I * H * (dtype === 'f16' ? 2 : 4)
  weights.experts.forEach((w, e) => {
    for (const [buf, arr] of [[dw.gate, w.gate], [dw.up, w.up], [dw.down, w.down]] as const) {
      if (arr.length !== I * H) throw new MoeError(ErrorCodes.SHAPE_MISMATCH, `expert ${e} weight has ${arr.length} elements, expected ${I * H}`)
      const data = dtype === 'f16' ? packF16(arr) : arr
      q.writeBuffer(buf, e * per, data.buffer, data.byteOffset, data.byteLength)
    }
  })
  if (weights.experts.length !== E) throw new MoeError(ErrorCodes.SHAPE_MISMATCH, `weights have ${weights.experts.length} experts, shape says ${E}`)
  return dw
}

/** Options of {@link generateLayerWeights}. */
export interface GenerateWeightsOptions {
  readonly seed?: number
  /** Standard deviation of the expert weights (default 0.02). */
  readonly std?: number
  /** Standard deviation of the router weight (default `std`). */
  readonly routerStd?: number
  readonly dtype?: WeightsDtype
}

/**
 * Seeded normal(0, std) weights generated on the GPU (for benchmarks at real model sizes:
 * Mixtral's 2.8 GB of f16 expert weights are made in milliseconds, never uploaded).
 * The same seed gives the same weights on every device.
 */
export async function generateLayerWeights(ctx: GpuContext, shape: ModelShape, options: GenerateWeightsOptions = {}): Promise<DeviceLayerWeights> {
  const dtype = options.dtype ?? 'f16'
  const std = options.std ?? 0.02
  const seed = options.seed ?? 1
  const dw = allocateLayerWeights(ctx, shape, dtype, 'moe-route generated weights')
  const { hidden: H, intermediate: I, experts: E } = shape
  const rec = ctx.recorder('init-weights')
  rec.run(initWeightsProgram('f32'), { count: E * H, seed: seed * 4 + 0, std: options.routerStd ?? std }, [dw.router])
  rec.run(initWeightsProgram(dtype), { count: E * I * H, seed: seed * 4 + 1, std }, [dw.gate])
  rec.run(initWeightsProgram(dtype), { count: E * I * H, seed: seed * 4 + 2, std }, [dw.up])
  rec.run(initWeightsProgram(dtype), { count: E * I * H, seed: seed * 4 + 3, std }, [dw.down])
  await rec.submit()
  return dw
}

async function readRange(ctx: GpuContext, src: GPUBuffer, offset: number, bytes: number): Promise<ArrayBuffer> {
  const dst = ctx.device.createBuffer({ label: 'moe-route weight readback', size: bytes, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST })
  const enc = ctx.device.createCommandEncoder({ label: 'moe-route weight readback' })
  enc.copyBufferToBuffer(src, offset, dst, 0, bytes)
  ctx.device.queue.submit([enc.finish()])
  await dst.mapAsync(MAP_READ_MODE)
  const out = dst.getMappedRange().slice(0)
  dst.destroy()
  return out
}

/** Reads one expert's weights back as f32 (f16 storage unpacked exactly). */
export async function readExpertWeights(ctx: GpuContext, dw: DeviceLayerWeights, expert: number): Promise<ExpertWeights> {
  const { hidden: H, intermediate: I } = dw.shape
  const per = I * H * (dw.dtype === 'f16' ? 2 : 4)
  const get = async (buf: GPUBuffer) => {
    const raw = await readRange(ctx, buf, expert * per, per)
    return dw.dtype === 'f16' ? unpackF16(new Uint32Array(raw), I * H) : new Float32Array(raw)
  }
  return { gate: await get(dw.gate), up: await get(dw.up), down: await get(dw.down) }
}

/** Reads the router weight back (E×H f32). */
export async function readRouterWeight(ctx: GpuContext, dw: DeviceLayerWeights): Promise<Float32Array> {
  return new Float32Array(await readRange(ctx, dw.router, 0, dw.shape.experts * dw.shape.hidden * 4))
}
