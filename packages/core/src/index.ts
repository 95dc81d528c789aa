/**
 * @moe-route/core — contracts and orchestration of moe-route.
 * Public API only: re-exports, no logic.
 */
import './polyfill.js'

export * from './errors.js'
export * from './types.js'
export * from './tokens.js'
export * from './inject.js'
export * from './router/router.js'
export * from './policy/policy.js'
export * from './dispatcher/dispatcher.js'
export * from './store/expert-store.js'
export * from './placement/placement.js'
export * from './backend/backend.js'
export * from './plugin/types.js'
export * from './plugin/define.js'
export * from './routing/routing.js'
export * from './util/rng.js'
