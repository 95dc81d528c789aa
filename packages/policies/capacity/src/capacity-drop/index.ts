/**
 * The `capacity-drop` policy of @moe-route/policy-capacity — Capacity-Aware Token Drop (He et al., "Capacity-Aware
 * Inference: Mitigating the Straggler Effect in Mixture of Experts") as a moe-route policy,
 * plus the capacity, priority, weighting and summary helpers the other capacity-aware
 * policies build on.
 */
import { capacityDrop } from './capacity-drop.policy.js'

export { capacityDrop, createTokenDrop, tokenDrop, PACKAGE_NAME, PACKAGE_VERSION, POLICY_NAME } from './capacity-drop.policy.js'
export { defaultOptions, schema, type CapacityDropOptions } from './capacity-drop.schema.js'
export * from '../shared/index.js'
export { capacityDropStage, MAX_LOWERED_SOURCE_DEVICES } from './capacity-drop.wgsl.js'

export default capacityDrop
