/** moe-route policy: expert-buffer */
export {}
