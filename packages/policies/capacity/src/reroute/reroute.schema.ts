/** Options of the `reroute` policy (Capacity-Aware Token Reroute, paper v1), schema and defaults. */
import type { JsonSchema } from '@moe-route/core'
import { capacityProperties, renormalizeProperty, strictObject, type CapacityOptions, type Renormalize } from '../shared/index.js'

/** Options of the `reroute` policy. */
export interface RerouteOptions extends CapacityOptions {
  /**
   * Capacity passes R, as the v1 code's `rounds`: pass 1 caps the router's choice by score,
   * each later pass first lets tokens that lost a pair pick their next-best experts, then caps
   * again. `1` is plain score token drop; pairs still over capacity after pass R are dropped.
   */
  rounds: number
  /** How final pairs are weighted (a rerouted pair starts from its model-native weight). */
  renormalize: Renormalize
}

/** Defaults: γ = 1.5, two passes (one re-selection), weights untouched, decode not capped, global scope. */
export const defaultOptions: RerouteOptions = {
  capacityFactor: 1.5,
  rounding: 'ceil',
  rounds: 2,
  renormalize: 'none',
  applyToDecode: false,
  scope: 'global',
}

/** JSON Schema (draft-07) of {@link RerouteOptions}, defaults merged. */
export const schema: JsonSchema = strictObject({
  ...capacityProperties,
  rounds: { type: 'integer', minimum: 1, maximum: 64 },
  renormalize: renormalizeProperty,
})
