/** moe-route policy: reroute */
export {}
