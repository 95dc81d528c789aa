/**
 * The capacity family's shared helpers (capacity per scope group, priorities, weights, the
 * typed pair table, outcomes, summaries, the family's WGSL), used by every policy folder of
 * this package and exported for policies built on them elsewhere.
 */
export { checkRouting, PolicyErrorCodes } from './errors.js'
export { buildOutcome, DECODE_SKIPPED, skippedOutcome, type OutcomeParts } from './outcome.js'
export { compareKeyed, keepWithinCapacity, keyedPairs, type CapacityCut, type KeyedPair, type Priority } from './priority.js'
export { capacityProperties, renormalizeProperty, renormalizeValues, strictObject, type CapacityOptions } from './schema.js'
export { capacityOf, scopeGroups, type CapacityRounding, type CapacityScope, type ScopeGroup } from './scope.js'
export { summarize, type OutcomeSummary } from './summarize.js'
export { capacityCutWgsl, capacityFamilyWgsl, groupCapacityParams, maxLoweredGroups, RENORMALIZE_CODES, type CapacityCutSpec } from './family.wgsl.js'
export { nativeDenominators, nativeWeight, renormalize, type Renormalize } from './weights.js'
export {
  capacityCut,
  capacityOutcome,
  reroutedList,
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
  type CapacityOutcomeParts,
  type OutputMove,
  renormalizeOutput,
  routingFromOutput,
  type OutputPairs,
  type PairTable,
} from './pair-table.js'
