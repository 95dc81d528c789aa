/** moe-route policy: c2r */
export {}
