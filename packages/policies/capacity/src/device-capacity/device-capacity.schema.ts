/** Options of the `device-capacity` policy (device-level capacity), their schema and defaults. */
import type { JsonSchema } from '@moe-route/core'
import { capacityProperties, renormalizeProperty, strictObject, type CapacityOptions, type Renormalize } from '../shared/index.js'

/** Options of the `device-capacity` policy. */
export interface DeviceCapacityOptions extends CapacityOptions {
  /** How kept pairs are weighted after a drop. */
  renormalize: Renormalize
}

/**
 * Defaults: γ = 1.0 (the paper's device-level setting on Qwen3-MoE), `ceil`, weights untouched,
 * decode not capped, global scope.
 */
export const defaultOptions: DeviceCapacityOptions = {
  capacityFactor: 1,
  rounding: 'ceil',
  renormalize: 'none',
  applyToDecode: false,
  scope: 'global',
}

/** JSON Schema (draft-07) of {@link DeviceCapacityOptions}, defaults merged. */
export const schema: JsonSchema = strictObject({ ...capacityProperties, renormalize: renormalizeProperty })
