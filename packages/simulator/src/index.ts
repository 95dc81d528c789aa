/**
 * @moe-route/simulator — expert-parallel simulation: a placement, a policy stack and a
 * workload on D devices turned into per-device load, all-to-all volume, layer latency
 * (slowest device), C_T and speedups against a baseline stack; with an HTML report.
 */
export * from './cost-model.js'
export * from './link-model.js'
export * from './expert-parallel.js'
export * from './simulator.js'
export * from './report.js'
export * from './sweep-report.js'
export { H100_HF_GROUPED_MM, H100_WEBGPU, H200_HF_GROUPED_MM, H200_WEBGPU, H200_WEBGPU_INT8 } from './calibration/default.js'
