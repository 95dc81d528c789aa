/** Version of @moe-route/core, checked against each plugin's `meta.core` range. */
export const CORE_VERSION = '0.1.0'
