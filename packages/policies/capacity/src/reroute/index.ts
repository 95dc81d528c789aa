/**
 * The `reroute` policy of @moe-route/policy-capacity — Capacity-Aware Token Reroute, the multi-round baseline of
 * "Capacity-Aware Inference" v1 (He et al.), as a moe-route policy.
 */
import { reroute } from './reroute.policy.js'

export { applyReroute, createReroute, reroute, PACKAGE_NAME, PACKAGE_VERSION, POLICY_NAME } from './reroute.policy.js'
export { MAX_LOWERED_SOURCE_DEVICES, rerouteStage } from './reroute.wgsl.js'
export { defaultOptions, schema, type RerouteOptions } from './reroute.schema.js'

export default reroute
