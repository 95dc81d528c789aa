/**
 * @moe-route/policy-expert-buffer — Expert Buffering ("Towards MoE Deployment", Huang et al.):
 * a per-device GPU cache of MoE experts backed by host memory, pluggable eviction policies
 * (LIFO with inactive-first eviction, FIFO, LRU, LFU, Belady's MIN), prefetch, large-batch
 * bypass, host and WebGPU residency targets, safetensors weights, and a cache simulator.
 */
export { expertBufferStore, expertBufferStore as default, PACKAGE_NAME, PACKAGE_VERSION } from './store/expert-buffer.plugin.js'
export { defaultOptions, schema, type ExpertBufferPluginOptions } from './store/expert-buffer.schema.js'
export {
  ExpertBufferStore,
  historyPredictor,
  type ExpertBufferStoreOptions,
  type ExpertBufferTelemetry,
  type ExpertCompute,
  type NextBatchPredictor,
  type TargetFactory,
} from './store/expert-buffer-store.js'
export { StoreErrorCodes } from './errors.js'
export type { EvictionContext, EvictionPolicy, ResidentExpert } from './eviction/eviction-policy.js'
export {
  beladyPolicy,
  evictionPolicies,
  evictionPolicyNames,
  fifoPolicy,
  lfuPolicy,
  lifoPolicy,
  lruPolicy,
  resolveEvictionPolicy,
  type InactiveOrder,
  type LifoOptions,
} from './eviction/policies.js'
export { ExpertCache, type AccessOptions, type CacheBatchResult, type CacheStep } from './cache/expert-cache.js'
export { splitExperts, type DeviceSplit } from './cache/placement.js'
export { hostTarget, type HostTargetOptions, type ResidencyTarget, type SlotBinding } from './targets/residency-target.js'
export { keepAlive, webgpuTarget, type WebGpuTarget, type WebGpuTargetOptions } from './targets/webgpu-target.js'
export { requestNodeGpu, type NodeGpu } from './targets/node-gpu.js'
export {
  EXPERT_DTYPE_BYTES,
  expertLayout,
  memoryWeightSource,
  syntheticWeightSource,
  type ExpertDtype,
  type ExpertLayout,
  type SyntheticWeightOptions,
  type WeightSource,
} from './weights/weight-source.js'
export { expertTensorLayouts, type ExpertTensorLayoutName, type ExpertTensorNamer, type ExpertTensorNames } from './weights/tensor-names.js'
export { openSafetensorsWeights, type SafetensorsWeightOptions } from './weights/safetensors-source.js'
export {
  simulateCache,
  type CacheSimRow,
  type CacheSimTable,
  type PrefetchPrediction,
  type PrefetchPredictor,
  type SimulateCacheOptions,
} from './simulate/simulate-cache.js'
export { batchRecords, normalizeTrace, type BatchRecordsOptions, type CacheTrace, type CacheTraceBatch, type NormalizedTrace, type RoutedTokenRecord } from './simulate/cache-trace.js'
export { crossLayerPredictor, rankNextExperts, type CrossLayerPredictorOptions, type LayerTransition } from './simulate/prefetch.js'
export { cacheTableSvg, formatCacheTable, type CacheSvgOptions } from './simulate/report.js'
export { sampleRecordedTrace, type RecordedRouting, type SampleTraceOptions } from './simulate/sampler.js'
