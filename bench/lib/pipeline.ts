/**
 * The configured layer's device pipeline for the kernel benchmarks: the same pipeline the
 * engine builds (softmax-top-k router, the capacity-drop policy or none, exact-size or static
 * dispatch, all lowered), on a layer and device weights the benchmark chooses (f16, int8 with
 * per-GPU tiles, ...), so layer options that are API-only can be swept.
 */
import { contiguousPlacement, exactSizeDispatcher, softmaxTopKRouter, type Dispatcher, type ModelShape, type Router, type TokenBatch } from '@moe-route/core'
import { createWebGpuPipeline, deviceTensor, type DeviceInt8Weights, type DeviceLayerWeights, type WebGpuMoeLayer, type WebGpuPipeline } from '@moe-route/backend-webgpu'
import { createTokenDrop } from '@moe-route/policy-capacity/capacity-drop'
import { createDynamicGating } from '@moe-route/policy-dynamic-gating'

/** What runs between top-k and the experts: nothing, capacity drop at γ, or static gating padded to ceil(γ·k·T/E). */
export interface BenchPolicy {
  readonly mode?: 'dynamic' | 'static'
  readonly capacityFactor?: number
}

/**
 * A device pipeline of `model` on `layer` with weights `dw` under `policy` (`create`: another
 * build's `createWebGpuPipeline`, for benchmarks that compare two builds side by side).
 */
export function benchPipeline(
  layer: WebGpuMoeLayer,
  dw: DeviceLayerWeights | DeviceInt8Weights,
  model: ModelShape,
  policy: BenchPolicy = {},
  expertKernel?: 'gemv' | 'gemm',
  create: typeof createWebGpuPipeline = createWebGpuPipeline,
): Promise<WebGpuPipeline> {
  const ctx = { model, devices: 1, seed: 1, placement: contiguousPlacement(model.experts, 1) }
  const router = softmaxTopKRouter.create({ normalizeTopK: null }, ctx) as Router
  const dispatcher: Dispatcher =
    policy.mode === 'static'
      ? createDynamicGating({ mode: 'static', capacityFactor: policy.capacityFactor ?? 1, capacityRule: 'expert-share' })
      : (exactSizeDispatcher.create({}, ctx) as Dispatcher)
  const policies = policy.mode !== 'static' && policy.capacityFactor !== undefined ? [createTokenDrop({ capacityFactor: policy.capacityFactor })] : []
  return create(layer, dw, { model, placement: ctx.placement, seed: 1, router, policies, dispatcher, weights: { kind: 'seeded', seed: 1, std: 0.02 }, activationBytes: 2 }, expertKernel ? { expertKernel } : {})
}

/** A batch whose hidden states are already on the device (`xb`: (T+1)×H with a zero last row, from `layer.uploadHidden`). */
export function deviceBatch(layer: WebGpuMoeLayer, xb: GPUBuffer, T: number, hidden: number, id = 0): TokenBatch {
  return { id, tokens: T, deviceHidden: deviceTensor(layer.ctx, xb, T, hidden, true) }
}
