/** moe-route policy: device-capacity */
export {}
