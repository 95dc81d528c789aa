/**
 * @moe-route/policy-placement — where experts live under expert parallelism: contiguous,
 * greedy and anti-correlation from load history (Paper B), collaboration clustering
 * (Occult, secondary source), DeepSeek EPLB replicas, incremental rebalancing under a
 * migration budget, and phy2log JSON import/export. Public API only.
 */
export * from './placement-map.js'
export * from './history.js'
export * from './greedy.js'
export * from './collaboration.js'
export * from './eplb.js'
export * from './incremental.js'
export * from './json.js'
export * from './protocol.js'
export * from './plugins.js'
export { PACKAGE_NAME, PACKAGE_VERSION } from './meta.js'
export * from './engine-metrics.js'
export * from './engine-formats.js'
