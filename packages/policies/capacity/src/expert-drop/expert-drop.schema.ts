/** Options of the `expert-drop` baseline policy, their JSON Schema and defaults. */
import type { JsonSchema } from '@moe-route/core'
import { renormalizeProperty, strictObject, type Renormalize } from '../shared/index.js'

/** Options of the `expert-drop` policy. */
export interface ExpertDropOptions {
  /**
   * How many of the lowest-load experts to skip per batch: an integer ≥ 1 is a count, a
   * number in (0, 1) a fraction of E (n = ⌊drop·E⌋, possibly 0). The paper's baselines:
   * Mixtral-like `drop: 1`; OLMoE/DeepSeek-like `drop: 0.1·γ` (the code's `int(0.1·E·γ)`,
   * e.g. `0.2` at γ = 2 → 12 of 64 experts).
   */
  drop: number
  /** How the surviving pairs are weighted. */
  renormalize: Renormalize
  /** Also skip experts in decode batches (`routing.decode`). */
  applyToDecode: boolean
}

/** Defaults: skip the bottom 10% of experts by load (the paper's "bottom 10%"), weights untouched. */
export const defaultOptions: ExpertDropOptions = { drop: 0.1, renormalize: 'none', applyToDecode: false }

/** JSON Schema (draft-07) of {@link ExpertDropOptions}, defaults merged. */
export const schema: JsonSchema = strictObject({
  drop: {
    anyOf: [
      { type: 'number', exclusiveMinimum: 0, exclusiveMaximum: 1 },
      { type: 'integer', minimum: 1 },
    ],
    description: 'count (integer ≥ 1) or fraction of experts (0 < drop < 1)',
  },
  renormalize: renormalizeProperty,
  applyToDecode: { type: 'boolean' },
})
