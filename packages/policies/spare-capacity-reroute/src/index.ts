/** moe-route policy: spare-capacity-reroute */
export {}
