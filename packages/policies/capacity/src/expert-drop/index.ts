/**
 * The `expert-drop` policy of @moe-route/policy-capacity — the Expert Drop baseline of "Capacity-Aware Inference"
 * (He et al.): skip the lowest-load experts of each batch.
 */
import { expertDrop } from './expert-drop.policy.js'

export { applyExpertDrop, createExpertDrop, expertDrop, expertsToDrop, lowestLoadExperts, PACKAGE_NAME, PACKAGE_VERSION, POLICY_NAME } from './expert-drop.policy.js'
export { defaultOptions, schema, type ExpertDropOptions } from './expert-drop.schema.js'
export { EXACT_MASS_LIMBS, expertDropStage } from './expert-drop.wgsl.js'

export default expertDrop
