/**
 * @moe-route/policy-capacity-drop — Capacity-Aware Token Drop (He et al., "Capacity-Aware
 * Inference: Mitigating the Straggler Effect in Mixture of Experts") as a moe-route policy,
 * plus the capacity, priority, weighting and summary helpers the other capacity-aware
 * policies build on.
 */
import { capacityDrop } from './capacity-drop.policy.js'

export { capacityDrop, createTokenDrop, tokenDrop, PACKAGE_NAME, PACKAGE_VERSION, POLICY_NAME } from './capacity-drop.policy.js'
export { defaultOptions, schema, type CapacityDropOptions } from './capacity-drop.schema.js'
export { checkRouting, PolicyErrorCodes } from './shared/errors.js'
export { buildOutcome, DECODE_SKIPPED, skippedOutcome, type OutcomeParts } from './shared/outcome.js'
export { compareKeyed, keepWithinCapacity, keyedPairs, type CapacityCut, type KeyedPair, type Priority } from './shared/priority.js'
export { capacityProperties, renormalizeProperty, renormalizeValues, strictObject, type CapacityOptions } from './shared/schema.js'
export { capacityOf, scopeGroups, type CapacityRounding, type CapacityScope, type ScopeGroup } from './shared/scope.js'
export { summarize, type OutcomeSummary } from './shared/summarize.js'
export { capacityDropStage, MAX_LOWERED_SOURCE_DEVICES } from './capacity-drop.wgsl.js'
export { capacityCutWgsl, capacityFamilyWgsl, groupCapacityParams, maxLoweredGroups, RENORMALIZE_CODES, type CapacityCutSpec } from './shared/family.wgsl.js'
export { nativeDenominators, nativeWeight, renormalize, type Renormalize } from './shared/weights.js'

export default capacityDrop
export {
  capacityCut,
  droppedList,
  expertCounts,
  isCanonicalLayout,
  lazyOutcome,
  nativeDenominatorsTyped,
  outputPairs,
  pairGroups,
  pairTable,
  priorityKeys,
  pushPair,
  renormalizeOutput,
  routingFromOutput,
  type OutputPairs,
  type PairTable,
} from './shared/pair-table.js'
