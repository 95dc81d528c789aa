/** moe-route policy: dynamic-gating */
export {}
