/** Routing traces (JSONL, .npy, safetensors) and realistic MoE workloads calibrated on recorded routing of real models. */
export {}
