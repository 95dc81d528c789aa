/** Options of the `expanded-drop` policy (Capacity-Aware Expanded Drop), their schema and defaults. */
import type { JsonSchema } from '@moe-route/core'
import { capacityProperties, strictObject, type CapacityOptions } from '../shared/index.js'

/**
 * Which experts a token may be kept at besides its top-k (SPEC A.5, E.1):
 * - `local`: the experts on the token's source device (the paper, §4): no extra all-to-all,
 * - `global-topM`: the token's top-M experts by score, M = ⌈k·overselectionRatio⌉ (ablation),
 * - `all`: every expert, what the official code does on one GPU (capacity-limited expert choice).
 */
export type CandidateSet = 'local' | 'global-topM' | 'all'

/** Options of the `expanded-drop` policy. */
export interface ExpandedDropOptions extends CapacityOptions {
  candidates: CandidateSet
  /** `global-topM` only: M = min(E, ⌈k·ratio⌉) experts per token (≥ 1; the paper tries 2 and 3). */
  overselectionRatio: number
  /**
   * `local` only: the local experts, instead of the placement. A flat list applies to every
   * token (the official code's `local_expert_indices`); a list of lists is indexed by the
   * token's source device. `null`: experts placed on the token's source device.
   */
  localExperts: number[] | number[][] | null
  /** At most this many experts per token after the capacity cut (highest scores); `null` = no cap (the paper's "w/o max"). */
  maxExpertsPerToken: number | null
  /**
   * Weight of a kept candidate: `score`, its raw softmax probability (the paper and the
   * official code); `model-native`, the same divided by the token's original top-k score sum
   * when the routing renormalises top-k (Mixtral), i.e. the scale the model was trained with.
   */
  weights: 'score' | 'model-native'
}

/**
 * Defaults: γ = 1.5, local candidates (the paper's definition; needs a placement over more
 * than one device or `localExperts`), no per-token cap, decode not capped, global scope.
 */
export const defaultOptions: ExpandedDropOptions = {
  capacityFactor: 1.5,
  rounding: 'ceil',
  candidates: 'local',
  overselectionRatio: 2,
  localExperts: null,
  maxExpertsPerToken: null,
  weights: 'score',
  applyToDecode: false,
  scope: 'global',
}

const expertId = { type: 'integer', minimum: 0 }

/** JSON Schema (draft-07) of {@link ExpandedDropOptions}, defaults merged. */
export const schema: JsonSchema = strictObject({
  ...capacityProperties,
  candidates: { type: 'string', enum: ['local', 'global-topM', 'all'] },
  overselectionRatio: { type: 'number', minimum: 1 },
  localExperts: {
    anyOf: [
      { type: 'null' },
      { type: 'array', items: expertId, uniqueItems: true },
      { type: 'array', items: { type: 'array', items: expertId, uniqueItems: true } },
    ],
  },
  maxExpertsPerToken: { type: ['integer', 'null'], minimum: 1 },
  weights: { type: 'string', enum: ['score', 'model-native'] },
})
