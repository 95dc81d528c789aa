/**
 * The `device-capacity` policy of @moe-route/policy-capacity — the device-level capacity variant of "Capacity-Aware
 * Inference" (He et al.): one budget per device instead of one per expert.
 */
import { deviceCapacity } from './device-capacity.policy.js'

export {
  applyDeviceCapacity,
  createDeviceCapacity,
  deviceBudgets,
  deviceCapacity,
  primaryDevices,
  PACKAGE_NAME,
  PACKAGE_VERSION,
  POLICY_NAME,
} from './device-capacity.policy.js'
export { defaultOptions, schema, type DeviceCapacityOptions } from './device-capacity.schema.js'
export { deviceCapacityStage, deviceClasses, MAX_LOWERED_BUDGETS } from './device-capacity.wgsl.js'

export default deviceCapacity
