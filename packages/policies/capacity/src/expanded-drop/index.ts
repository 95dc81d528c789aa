/**
 * The `expanded-drop` policy of @moe-route/policy-capacity — Capacity-Aware Expanded Drop (He et al., "Capacity-Aware
 * Inference", ICLR 2026) as a moe-route policy: tokens may also be kept at local (or top-M,
 * or any) experts, each expert keeps its best candidates within capacity.
 */
import { expandedDrop } from './expanded-drop.policy.js'

export { applyExpandedDrop, createExpandedDrop, expandedDrop, PACKAGE_NAME, PACKAGE_VERSION, POLICY_NAME } from './expanded-drop.policy.js'
export { defaultOptions, schema, type CandidateSet, type ExpandedDropOptions } from './expanded-drop.schema.js'
export { expandedDropStage, MAX_LOWERED_SOURCE_DEVICES } from './expanded-drop.wgsl.js'
export { assertPlacement, extraCandidates, placementRequired, type ExtraCandidates } from './candidates.js'

export default expandedDrop
