/** @moe-route/backend-cpu — the reference MoE layer over Float32Array. */
export { cpuBackend, createCpuBackend, default } from './cpu-backend.js'
export { expertsForward, gateMatmul, l2Norm, maxRelError, naiveTokenLoop, outputChecksum, relativeL2, silu, swiglu } from './kernels.js'
export { randomHidden, randomLayerWeights, type RandomWeightsOptions } from './weights.js'
