/** WebGPU backend for moe-route: MoE layer kernels in WGSL, run through Dawn (npm webgpu) or any WebGPU runtime. */
export {}
