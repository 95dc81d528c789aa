/**
 * @moe-route/backend-webgpu — the MoE layer's kernels in WGSL on a WebGPU device: Dawn's
 * native node bindings (npm `webgpu`) in Node, or any GPUDevice you pass in.
 */
export { createWebGpuBackend, type WebGpuBackend, type WebGpuBackendOptions, type FallbackInfo } from './webgpu-backend.js'
export { webgpuBackend, webgpuBackend as default, webgpuDefaultOptions, webgpuOptionsSchema, type WebGpuPluginOptions } from './plugin.js'
export { WebGpuMoeLayer, gemmGridRows, withActiveList, type ExpertKernel, type LayerOptions, type ExpertKernelUsed, type Int8KernelOption } from './layer.js'
export { WebGpuPipeline, createWebGpuPipeline, deviceTensor, syntheticHidden, type WebGpuPipelineOptions } from './pipeline/device-pipeline.js'
export { GROUP_FUSED_DEFAULT_PAIRS, GROUP_FUSED_MAX_PAIRS } from './pipeline/grouping.program.js'
export { compileStage, stageSource, type StageRole } from './pipeline/stage-program.js'
export { loadSafetensorsWeights, layerTensorNames } from './pipeline/safetensors-weights.js'
export { createStoreSlots, type StoreSlots } from './pipeline/store-slots.js'
export {
  allocateLayerWeights,
  checkShape,
  generateLayerWeights,
  readExpertWeights,
  readRouterWeight,
  uploadLayerWeights,
  type DeviceLayerWeights,
  type GenerateWeightsOptions,
} from './weights.js'
export {
  INT8_MIN_ROW_MAX,
  INV127,
  int8GemmRef,
  int8Scale,
  isHostInt8Weights,
  quantizeLayerWeightsInt8,
  quantizeRowsInt8,
  w8a8ExpertsForward,
  type HostInt8Expert,
  type HostInt8Weights,
  type Int8Rows,
  type W8A8Trace,
} from './int8.js'
export {
  INT8_WEIGHT_PAD,
  checkInt8Shape,
  isDeviceInt8Weights,
  quantizeDeviceWeights,
  int8TileByte,
  tileInt8,
  uploadInt8Weights,
  type DeviceInt8Weights,
} from './weights-int8.js'
export {
  DEFAULT_INT8_TILES,
  DEFAULT_SGM_TILE,
  fitSgmTile,
  DOT4_BM,
  DOT4_BN,
  int8GemmProgram,
  int8GemvLayout,
  int8GemvProgram,
  int8SpareRows,
  int8TileDims,
  quantizeRowsProgram,
  quantizeRowsWorkgroup,
  quantizeWeightsProgram,
  sgmSubgroups,
  sgmTileDims,
  sgmWorkgroupBytes,
  STAGED_SGM_TILE,
  STAGED_SMALL_SGM_TILE,
  type Int8GemmConfig,
  type Int8GemmKind,
  type Int8GemmParams,
  type Int8GemvParams,
  type Int8TilePlan,
  type Int8Tiles,
  type Int8Variant,
  type QuantizeRowsParams,
  type SgmTile,
} from './kernels/expert-int8/int8.program.js'
export {
  DEFAULT_GATE_TILES,
  GATE_SPLIT_MAX_OUTPUTS,
  GATE_TILED_MIN_OUTPUTS,
  GATE_TILED_MIN_OUTPUTS_WIDE,
  gateProgram,
  gateProgramFor,
  gateTileFor,
  gateTiledProgram,
  type GateParams,
  type GateTilePlan,
} from './kernels/gate/gate.program.js'
export { gateTileDims, gateTileProblem, type GateTile, type GateTileDims } from './kernels/gate/gate-tiled.wgsl.js'
export { acquireDevice, dawnFlagsOf, describeAdapter, probeAdapter, type AcquireDeviceOptions, type AcquiredDevice, type DeviceFeatures } from './gpu/device.js'
export { GpuContext, Recorder } from './gpu/context.js'
export { BufferPool, bucketSize } from './gpu/buffer-pool.js'
export { ProgramCache, grid1d, uniforms, type Dispatch, type KernelProgram, type RunData } from './gpu/program.js'
export { Profiler } from './gpu/profiler.js'
export { f16Bits, f16ToNumber, packF16, roundToF16, unpackF16 } from './f16.js'
export { DEFAULT_MULTIROW_PLANS, H200_MULTIROW_PLANS, MULTIROW_PLANS_BY_GPU, multiRowLayoutLabel, multiRowPlansForGpu, type MultiRowLayout, type MultiRowPlan, type WeightsDtype } from './kernels/expert-ffn/expert-ffn.program.js'
