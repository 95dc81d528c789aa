/**
 * @moe-route/policy-dynamic-gating — Dynamic Gating ("Towards MoE Deployment", Huang et al.)
 * as a moe-route dispatcher, with the static-gating baseline it replaces and per-batch stats.
 */
export { createDynamicGating, dynamicGating, dynamicGating as default, PACKAGE_NAME, PACKAGE_VERSION, type DynamicGatingDispatcher } from './dynamic-gating.dispatcher.js'
export { defaultOptions, schema, type CapacityRule, type DynamicGatingOptions } from './dynamic-gating.schema.js'
export { dynamicDispatch, type DynamicDispatchOptions } from './dynamic-dispatch.js'
export { staticCapacity, staticDispatch, type StaticDispatchOptions } from './static-dispatch.js'
export { isDynamicGatingPlan, type DynamicGatingPlan, type ExchangeModel, type PlanMemory } from './plan.js'
export { dispatchStats, type DispatchMemory, type DispatchStats, type DispatchStatsOptions } from './stats.js'
export { dynamicGatingGrouping } from './dynamic-gating.grouping.js'
