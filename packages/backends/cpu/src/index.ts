/** CPU reference backend for moe-route: the MoE layer forward over Float32Array. */
export {}
