/**
 * @moe-route/policy-c2r — collaboration-constrained routing (C2R, NAACL 2025): profile which
 * experts are chosen together, then route each token's top-1 freely and its other k − 1
 * among that expert's Top-T collaborators; plus Occult's device-limited pruning (secondary
 * source). Both change the model's routing: quality parity needs a fine-tuned checkpoint.
 */
export * from './profile.js'
export * from './profile-json.js'
export * from './c2r.router.js'
export * from './device-limit.js'
export { PACKAGE_NAME, PACKAGE_VERSION } from './meta.js'
export { c2rStage } from './c2r.wgsl.js'
export { deviceLimitStage, MAX_LOWERED_DEVICES } from './device-limit.wgsl.js'
