/**
 * @moe-route/policy-capacity — the capacity-aware routing policies of "Capacity-Aware
 * Inference" (He et al.) and their extensions, one folder per policy, with the helpers they
 * share. Each policy is also a subpath (`@moe-route/policy-capacity/reroute`) exporting the
 * names its former package (`@moe-route/policy-reroute`) exported.
 */
import type { Plugin } from '@moe-route/core'
import { capacityDrop } from './capacity-drop/capacity-drop.policy.js'
import { deviceCapacity } from './device-capacity/device-capacity.policy.js'
import { expandedDrop } from './expanded-drop/expanded-drop.policy.js'
import { expertDrop } from './expert-drop/expert-drop.policy.js'
import { reroute } from './reroute/reroute.policy.js'
import { spareCapacityReroute } from './spare-capacity-reroute/spare-capacity-reroute.policy.js'

export * from './shared/index.js'
export { defineCapacityPolicy, type CapacityPolicy, type CapacityPolicyInstance, type CapacityPolicySpec } from './define-capacity-policy.js'
export { PACKAGE_NAME, PACKAGE_VERSION } from './meta.js'
export { capacityDrop, createTokenDrop, tokenDrop, type CapacityDropOptions } from './capacity-drop/index.js'
export { expandedDrop, createExpandedDrop, applyExpandedDrop, type ExpandedDropOptions, type CandidateSet } from './expanded-drop/index.js'
export { reroute, createReroute, applyReroute, type RerouteOptions } from './reroute/index.js'
export { spareCapacityReroute, createSpareCapacityReroute, applySpareCapacityReroute, type SpareCapacityRerouteOptions } from './spare-capacity-reroute/index.js'
export { deviceCapacity, createDeviceCapacity, applyDeviceCapacity, deviceBudgets, primaryDevices, type DeviceCapacityOptions } from './device-capacity/index.js'
export { expertDrop, createExpertDrop, applyExpertDrop, expertsToDrop, lowestLoadExperts, type ExpertDropOptions } from './expert-drop/index.js'

/** Every policy plugin of this package, for registering them all (`plugins.forEach((p) => registry.register(p))`). */
export const capacityPolicies: readonly Plugin<'policy'>[] = [capacityDrop, expandedDrop, reroute, spareCapacityReroute, deviceCapacity, expertDrop]

export default capacityPolicies
