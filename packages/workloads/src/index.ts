/**
 * @moe-route/workloads — routing traces (JSONL, .npy, safetensors) and realistic MoE
 * workloads calibrated on recorded routing of real models. Public API only.
 */
export * from './safetensors/safetensors.js'
export { decodeFloats, encodeFloats, type FloatDtype } from './io/dtype.js'
