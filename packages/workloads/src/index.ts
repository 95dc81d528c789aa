/**
 * @moe-route/workloads — routing traces (JSONL, .npy, safetensors) and realistic MoE
 * workloads calibrated on recorded routing of real models. Public API only: re-exports.
 */
export * from './safetensors/safetensors.js'
export { layerTensorNames, readSafetensorsLayer, type SafetensorsLayerSource } from './safetensors/layer-weights.js'
export * from './npy/npy.js'
export * from './jsonl/jsonl.js'
export * from './trace/trace.js'
export * from './stats/load-stats.js'
export { synthesizeScores, weightsFromScores, DEFAULT_LOGIT_STD, type GateScoreOptions } from './generators/gate-scores.js'
export { inclusionProbabilities } from './generators/sampling.js'
export { createWorkload, routingFromChoices, type ChoicesRoutingOptions, type Workload, type WorkloadDefinition, type WorkloadRunOptions, type WorkloadRoutingOptions, type RoutingChoices, type TokenSampler } from './generators/workload.js'
export { ScoreModel, TokenRandom, type ScoreModelOptions } from './generators/score-model.js'
export {
  uniformWorkload,
  popularityWorkload,
  mixtralReplayWorkload,
  llamaMoePairsWorkload,
  type MixtralReplayOptions,
} from './generators/generators.js'
export { workloadFromSpec, listWorkloadSpecs, workloadSpecPatterns, DEFAULT_WORKLOAD } from './generators/spec.js'
export { expertCounts, llamaMoeCoactivation, mixtralTokens, mixtralTokenExperts, type ExpertCountsModel, type CoactivationData, type TokenExpertTable } from './data/data.js'
export { decodeFloats, encodeFloats, type FloatDtype } from './io/dtype.js'
export { tokenizeMistral, detokenizeMistral, MISTRAL_NEWLINE } from './generators/tokenize.js'
export * from './interop/record.js'
export { openRoutingRecord, sniffRecordFormat, RECORD_FORMATS, type OpenRecordOptions } from './interop/open-record.js'
export { openVllmNpy, openVllmSafetensors, openVllmJson, type RecordReadOptions } from './interop/vllm.js'
export { openSglangDump } from './interop/sglang.js'
export { openTrtllmStats } from './interop/trtllm.js'
export { openMegatronTrace } from './interop/megatron.js'
export { openTorchArchive, type TorchArchive } from './interop/torch-archive.js'
export { readPickle, PyDict, PyTuple, TensorRef, StorageRef, type PyValue } from './interop/pickle.js'
export { openIntNpy, type IntNpyFile } from './npy/npy.js'
export { WorkloadErrorCodes } from './io/errors.js'
export { openZip, type ZipArchive, type ZipEntryInfo } from './io/zip.js'
export { batchHidden, randomHidden, randomLayerWeights, withSyntheticHidden, type RandomWeightsOptions } from './synthetic/synthetic.js'
