/** moe-route policy: placement */
export {}
