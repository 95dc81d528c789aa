/**
 * int8 expert weights on the device (the W8A8 prefill path): per expert and matrix kind the
 * weight quantized per output channel (scheme in `int8.ts`) and stored TRANSPOSED as a K×N
 * row-major int8 matrix — element [k][n] at byte e·K·N + k·N + n, packed 4 per u32
 * little-endian (gate/up: K = H, N = I; down: K = I, N = H) — plus f32 scales E×N and the
 * f32 router. Both int8 GEMMs read this one layout (the tensor-core kernel loads it as its
 * right-hand K×N operand; the dot4 kernel transposes 4×4-byte blocks while staging).
 */
import { ErrorCodes, MoeError, type LayerWeights, type ModelShape } from '@moe-route/core'
import { STORAGE_RW } from './gpu/constants.js'
import type { GpuContext } from './gpu/context.js'
import { isHostInt8Weights, quantizeLayerWeightsInt8, type HostInt8Weights, type Int8Rows } from './int8.js'
import { quantizeWeightsProgram } from './kernels/expert-int8/int8.program.js'
import type { DeviceLayerWeights } from './weights.js'

/** A layer's int8 weights resident on one device. Lifetime: until `destroy()` or the device is lost. */
export interface DeviceInt8Weights {
  readonly kind: 'int8'
  readonly shape: ModelShape
  readonly device: GPUDevice
  /** Router weight E×H, f32. */
  readonly router: GPUBuffer
  /** E × (H×I) int8, K×N per expert, tiled (see the module doc). */
  readonly gateQ: GPUBuffer
  readonly upQ: GPUBuffer
  /** E × (I×H) int8, K×N per expert, tiled. */
  readonly downQ: GPUBuffer
  /** E×I f32 per output channel. */
  readonly gateScale: GPUBuffer
  readonly upScale: GPUBuffer
  /** E×H f32. */
  readonly downScale: GPUBuffer
  /** Bytes of one expert's three int8 matrices and their scales. */
  readonly expertBytes: number
  /** Frees the buffers. */
  destroy(): void
}

/**
 * Zero bytes after each int8 matrix buffer (a guard: the kernels clamp column tiles to the
 * last one and never read past the matrix).
 */
export const INT8_WEIGHT_PAD = 1024

/** True for {@link DeviceInt8Weights}. */
export function isDeviceInt8Weights(w: unknown): w is DeviceInt8Weights {
  return typeof w === 'object' && w !== null && (w as { kind?: unknown }).kind === 'int8' && 'gateQ' in w
}

/** Throws unless the shape fits the int8 kernels (H and I multiples of 64) and the device limits. */
export function checkInt8Shape(shape: ModelShape, device: GPUDevice): void {
  const { hidden: H, intermediate: I, experts: E, topK } = shape
  if (H % 64 !== 0 || I % 64 !== 0) {
    throw new MoeError(ErrorCodes.SHAPE_MISMATCH, `the int8 kernels need hidden and intermediate sizes that are multiples of 64 (got H ${H}, I ${I})`, { plugin: 'webgpu', hidden: H, intermediate: I })
  }
  if (E > 256 || topK > 16 || topK < 1) {
    throw new MoeError(ErrorCodes.INPUT_INVALID, `the WebGPU kernels support up to 256 experts and top-k 1..16 (got E ${E}, k ${topK})`, { plugin: 'webgpu' })
  }
  const bytes = E * I * H + INT8_WEIGHT_PAD
  const limit = Math.min(device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize)
  if (bytes > limit) {
    throw new MoeError(ErrorCodes.BACKEND_UNAVAILABLE, `one int8 expert matrix kind of this layer needs ${bytes} bytes, over the device's storage-buffer limit of ${limit}`, { plugin: 'webgpu', bytes, limit })
  }
}

function allocate(ctx: GpuContext, shape: ModelShape, label: string): DeviceInt8Weights {
  checkInt8Shape(shape, ctx.device)
  const { hidden: H, intermediate: I, experts: E } = shape
  const mk = (what: string, size: number) => ctx.device.createBuffer({ label: `${label} ${what}`, size, usage: STORAGE_RW })
  const router = mk('router', E * H * 4)
  const gateQ = mk('gateQ', E * I * H + INT8_WEIGHT_PAD)
  const upQ = mk('upQ', E * I * H + INT8_WEIGHT_PAD)
  const downQ = mk('downQ', E * I * H + INT8_WEIGHT_PAD)
  const gateScale = mk('gateScale', E * I * 4)
  const upScale = mk('upScale', E * I * 4)
  const downScale = mk('downScale', E * H * 4)
  const all = [router, gateQ, upQ, downQ, gateScale, upScale, downScale]
  return {
    kind: 'int8',
    shape,
    device: ctx.device,
    router,
    gateQ,
    upQ,
    downQ,
    gateScale,
    upScale,
    downScale,
    expertBytes: 3 * I * H + (2 * I + H) * 4,
    destroy() {
      for (const b of all) b.destroy()
    },
  }
}

/**
 * Byte of element [k][n] of one expert's K×N int8 matrix in the tiled layout: 32 (k) × 16 (n)
 * blocks of 512 contiguous bytes, row-major inside a block (k·16 + n), blocks ordered by
 * column tile then k tile — so one tensor-core right fragment (32 k × 16 n) is one
 * contiguous 512-byte load and a 16-column panel over all K is contiguous. K must be a
 * multiple of 32 and N of 16.
 */
export const int8TileByte = (k: number, n: number, K: number): number => (((n >> 4) * (K >> 5) + (k >> 5)) << 9) + ((k & 31) << 4) + (n & 15)

/** The K×N int8 bytes, tiled ({@link int8TileByte}), of an N×K per-channel-quantized matrix. */
export function tileInt8(m: Int8Rows, N: number, K: number): Int8Array {
  const t = new Int8Array(K * N)
  for (let n = 0; n < N; n++) {
    const o = n * K
    for (let k = 0; k < K; k++) t[int8TileByte(k, n, K)] = m.q[o + k]
  }
  return t
}

/**
 * Quantizes host weights on the CPU (per output channel, exact round-half-even, see
 * `int8.ts`) and uploads them in the K×N layout, plus the f32 router.
 * @throws MOE_ROUTE_ERR_SHAPE_MISMATCH when H or I is not a multiple of 64.
 * @example
 * const w8 = uploadInt8Weights(ctx, weights)
 * await layer.forward(x, w8) // runs the int8 kernels
 */
export function uploadInt8Weights(ctx: GpuContext, host: LayerWeights | HostInt8Weights): DeviceInt8Weights {
  const { hidden: H, intermediate: I, experts: E } = host.shape
  checkInt8Shape(host.shape, ctx.device)
  if (host.experts.length !== E) throw new MoeError(ErrorCodes.SHAPE_MISMATCH, `weights have ${host.experts.length} experts, shape says ${E}`)
  if (!isHostInt8Weights(host)) {
    host.experts.forEach((w, e) => {
      for (const arr of [w.gate, w.up, w.down]) if (arr.length !== I * H) throw new MoeError(ErrorCodes.SHAPE_MISMATCH, `expert ${e} weight has ${arr.length} elements, expected ${I * H}`)
    })
  }
  const q8 = isHostInt8Weights(host) ? host : quantizeLayerWeightsInt8(host)
  const dw = allocate(ctx, host.shape, 'moe-route int8 weights')
  const q = ctx.device.queue
  const put = (buf: GPUBuffer, offset: number, data: ArrayBufferView) => q.writeBuffer(buf, offset, data.buffer, data.byteOffset, data.byteLength)
  put(dw.router, 0, host.router)
  q8.experts.forEach((w, e) => {
    put(dw.gateQ, e * I * H, tileInt8(w.gate, I, H))
    put(dw.upQ, e * I * H, tileInt8(w.up, I, H))
    put(dw.downQ, e * I * H, tileInt8(w.down, H, I))
    put(dw.gateScale, e * I * 4, w.gate.scale)
    put(dw.upScale, e * I * 4, w.up.scale)
    put(dw.downScale, e * H * 4, w.down.scale)
  })
  return dw
}

/**
 * Quantizes device weights (f32 or f16, e.g. from `generateLayerWeights`) on the GPU with
 * the same rule as the host (bit-identical for the same f32 values; f16 weights are widened
 * exactly) into new int8 buffers; the router is copied. `dw` stays valid.
 * @example
 * const w8 = await quantizeDeviceWeights(ctx, await generateLayerWeights(ctx, shape, { dtype: 'f16' }))
 */
export async function quantizeDeviceWeights(ctx: GpuContext, dw: DeviceLayerWeights): Promise<DeviceInt8Weights> {
  const { hidden: H, intermediate: I, experts: E } = dw.shape
  const w8 = allocate(ctx, dw.shape, 'moe-route int8 weights (quantized on device)')
  const enc = ctx.device.createCommandEncoder({ label: 'int8 router copy' })
  enc.copyBufferToBuffer(dw.router, 0, w8.router, 0, E * H * 4)
  ctx.device.queue.submit([enc.finish()])
  const rec = ctx.recorder('int8-quantize-weights')
  const prog = quantizeWeightsProgram(dw.dtype)
  rec.run(prog, { ndim: I, kdim: H, experts: E }, [dw.gate, w8.gateQ, w8.gateScale])
  rec.run(prog, { ndim: I, kdim: H, experts: E }, [dw.up, w8.upQ, w8.upScale])
  rec.run(prog, { ndim: H, kdim: I, experts: E }, [dw.down, w8.downQ, w8.downScale])
  await rec.submit()
  return w8
}
