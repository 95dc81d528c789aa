/** Expert-parallel simulator for moe-route: routing, placement and policy stacks turned into per-device load, all-to-all volume and layer latency. */
export {}
