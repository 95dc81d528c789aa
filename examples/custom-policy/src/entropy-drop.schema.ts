/** Options of the entropy-drop policy, their defaults and their JSON Schema. */
import type { JsonSchema } from '@moe-route/core'

/** Options of `entropy-drop`. */
export interface EntropyDropOptions {
  /** Capacity factor γ: each expert keeps at most C = γ·k·T/E pairs per batch. */
  capacityFactor: number
  /** How C is rounded to an integer. */
  rounding: 'ceil' | 'floor' | 'round'
  /** Leave decode batches (one token per sequence) untouched. */
  skipDecode: boolean
}

/** The defaults: γ = 1.25, C rounded up, decode batches skipped. */
export const defaultOptions: EntropyDropOptions = { capacityFactor: 1.25, rounding: 'ceil', skipDecode: true }

/** JSON Schema of {@link EntropyDropOptions} (after defaults are merged). */
export const schema: JsonSchema = {
  type: 'object',
  properties: {
    capacityFactor: { type: 'number', exclusiveMinimum: 0, maximum: 1e6, description: 'Capacity factor γ (C = γ·k·T/E)' },
    rounding: { type: 'string', enum: ['ceil', 'floor', 'round'], description: 'Rounding of C' },
    skipDecode: { type: 'boolean', description: 'Leave decode batches untouched' },
  },
  required: ['capacityFactor', 'rounding', 'skipDecode'],
  additionalProperties: false,
}
