/** JSON Schema fragments shared by the capacity-aware policies (strict: no unknown fields). */
import { MAX_CAPACITY_FACTOR, type JsonSchema } from '@moe-route/core'
import type { Renormalize } from './weights.js'

/** Options every capacity-aware policy shares. */
export interface CapacityOptions {
  /** γ: capacity as a multiple of the uniform share N̄ = k·T/E (> 0). */
  capacityFactor: number
  /** How γ·k·T/E becomes a whole number of pairs (official code: `ceil`). */
  rounding: 'ceil' | 'floor' | 'round'
  /** Cap decode batches (`routing.decode`) too; the official code never does. */
  applyToDecode: boolean
  /** One capacity for the batch, or one per source device before the all-to-all. */
  scope: 'global' | 'per-source-device'
}

/** Schema properties of {@link CapacityOptions}. */
export const capacityProperties: Record<keyof CapacityOptions, JsonSchema> = {
  capacityFactor: { type: 'number', exclusiveMinimum: 0, maximum: MAX_CAPACITY_FACTOR, description: 'γ, capacity as a multiple of k·T/E' },
  rounding: { type: 'string', enum: ['ceil', 'floor', 'round'] },
  applyToDecode: { type: 'boolean' },
  scope: { type: 'string', enum: ['global', 'per-source-device'] },
}

/** The values of the `renormalize` option. */
export const renormalizeValues: readonly Renormalize[] = ['none', 'model-native', 'kept']

/** Schema of the `renormalize` option (see {@link Renormalize}). */
export const renormalizeProperty: JsonSchema = { type: 'string', enum: [...renormalizeValues] }

/** A strict object schema: every listed property required, nothing else allowed. */
export function strictObject(properties: Record<string, JsonSchema>): JsonSchema {
  return { type: 'object', properties, required: Object.keys(properties), additionalProperties: false }
}
