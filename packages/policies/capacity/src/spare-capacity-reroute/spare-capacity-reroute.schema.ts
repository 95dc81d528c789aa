/** Options of the `spare-capacity-reroute` policy, their JSON Schema and defaults. */
import type { JsonSchema } from '@moe-route/core'
import { capacityProperties, renormalizeProperty, strictObject, type CapacityOptions, type Renormalize } from '../shared/index.js'

/** Options of the `spare-capacity-reroute` policy. */
export interface SpareCapacityRerouteOptions extends CapacityOptions {
  /**
   * Only move a pair to one of the token's `maxRank` best experts by gate score (its own top-k
   * included); `null` = any expert with room. Small values keep moves to experts the router
   * rated well; larger ones drop less.
   */
  maxRank: number | null
  /** How final pairs are weighted (a moved pair starts from its model-native weight). */
  renormalize: Renormalize
}

/** Defaults: γ = 1.5, any expert with room, weights untouched, decode not capped, global scope. */
export const defaultOptions: SpareCapacityRerouteOptions = {
  capacityFactor: 1.5,
  rounding: 'ceil',
  maxRank: null,
  renormalize: 'none',
  applyToDecode: false,
  scope: 'global',
}

/** JSON Schema (draft-07) of {@link SpareCapacityRerouteOptions}, defaults merged. */
export const schema: JsonSchema = strictObject({
  ...capacityProperties,
  maxRank: { type: ['integer', 'null'], minimum: 1 },
  renormalize: renormalizeProperty,
})
