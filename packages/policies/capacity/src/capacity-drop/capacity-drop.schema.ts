/** Options of the `capacity-drop` policy (Capacity-Aware Token Drop), their schema and defaults. */
import type { JsonSchema } from '@moe-route/core'
import type { Priority } from '../shared/priority.js'
import { capacityProperties, renormalizeProperty, strictObject, type CapacityOptions } from '../shared/schema.js'
import type { Renormalize } from '../shared/weights.js'

/** Options of the `capacity-drop` policy. */
export interface CapacityDropOptions extends CapacityOptions {
  /** Which pairs an over-capacity expert keeps (`score`: highest gate score). */
  priority: Priority
  /** How kept pairs are weighted after a drop. */
  renormalize: Renormalize
}

/**
 * Defaults: γ = 1.5 (the paper's setting for Qwen1.5-MoE and Mixtral, "sufficient to maintain
 * performance"), `ceil` as in the official code, score priority, weights untouched, decode
 * batches not capped, one global capacity.
 */
export const defaultOptions: CapacityDropOptions = {
  capacityFactor: 1.5,
  rounding: 'ceil',
  priority: 'score',
  renormalize: 'none',
  applyToDecode: false,
  scope: 'global',
}

/** JSON Schema (draft-07) of {@link CapacityDropOptions}, defaults merged. */
export const schema: JsonSchema = strictObject({
  ...capacityProperties,
  priority: { type: 'string', enum: ['score', 'first', 'last', 'random'] },
  renormalize: renormalizeProperty,
})
