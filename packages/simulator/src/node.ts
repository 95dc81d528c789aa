/**
 * @moe-route/simulator/node — the Node-only part of the simulator: runs spread over worker
 * threads (the main entry stays browser-safe).
 */
export * from './parallel.js'
