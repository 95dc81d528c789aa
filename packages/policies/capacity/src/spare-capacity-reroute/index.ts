/**
 * The `spare-capacity-reroute` policy of @moe-route/policy-capacity — one-pass reroute of capacity overflow to the
 * best expert that still has room (an extension of "Capacity-Aware Inference", He et al.).
 */
import { spareCapacityReroute } from './spare-capacity-reroute.policy.js'

export {
  applySpareCapacityReroute,
  createSpareCapacityReroute,
  spareCapacityReroute,
  PACKAGE_NAME,
  PACKAGE_VERSION,
  POLICY_NAME,
} from './spare-capacity-reroute.policy.js'
export { MAX_LOWERED_SOURCE_DEVICES, spareCapacityRerouteStage } from './spare-capacity-reroute.wgsl.js'
export { defaultOptions, schema, type SpareCapacityRerouteOptions } from './spare-capacity-reroute.schema.js'

export default spareCapacityReroute
