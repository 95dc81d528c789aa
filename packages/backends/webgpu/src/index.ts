/**
 * @moe-route/backend-webgpu — the MoE layer's kernels in WGSL on a WebGPU device: Dawn's
 * native node bindings (npm `webgpu`) in Node, or any GPUDevice you pass in.
 */
export { createWebGpuBackend, cpuForward, type WebGpuBackend, type WebGpuBackendOptions, type FallbackInfo } from './webgpu-backend.js'
export { webgpuBackend, webgpuBackend as default, webgpuDefaultOptions, webgpuOptionsSchema, type WebGpuPluginOptions } from './plugin.js'
export {
  WebGpuMoeLayer,
  type DeviceRouting,
  type ExpertKernel,
  type ForwardBuffers,
  type ForwardOptions,
  type ForwardResult,
  type LayerOptions,
} from './layer.js'
export { referenceDispatch, resolvePolicy, type LayerPolicy, type ReferenceDispatch, type ResolvedPolicy } from './policy.js'
export {
  checkShape,
  generateLayerWeights,
  readExpertWeights,
  readRouterWeight,
  uploadLayerWeights,
  type DeviceLayerWeights,
  type GenerateWeightsOptions,
} from './weights.js'
export { acquireDevice, describeAdapter, probeAdapter, type AcquireDeviceOptions, type AcquiredDevice, type DeviceFeatures } from './gpu/device.js'
export { GpuContext, Recorder } from './gpu/context.js'
export { BufferPool, bucketSize } from './gpu/buffer-pool.js'
export { ProgramCache, grid1d, uniforms, type Dispatch, type KernelProgram, type RunData } from './gpu/program.js'
export { Profiler } from './gpu/profiler.js'
export { f16Bits, f16ToNumber, packF16, roundToF16, unpackF16 } from './f16.js'
export type { WeightsDtype } from './kernels/expert-ffn/expert-ffn.program.js'
