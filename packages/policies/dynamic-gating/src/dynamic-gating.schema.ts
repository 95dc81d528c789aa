/** Options of the `dynamic-gating` dispatcher, their JSON Schema and defaults. */
import { MAX_CAPACITY_FACTOR, type JsonSchema } from '@moe-route/core'

/** How a static-gating capacity is derived from the batch. */
export type CapacityRule = 'batch-fraction' | 'expert-share'

/** Options of the `dynamic-gating` dispatcher plugin. */
export interface DynamicGatingOptions {
  /**
   * `dynamic`: exact-size expert groups (counting sort), nothing padded or dropped (the paper's
   * method). `static`: fixed per-expert buffers padded to a capacity, overflow dropped (the
   * GShard/fairseq baseline it replaces).
   */
  mode: 'dynamic' | 'static'
  /**
   * Static only. With `capacityRule: 'batch-fraction'` the per-expert capacity is
   * `ceil(capacityFactor · S)` for S tokens per source device (SPEC B.2, the paper's `C·S`);
   * with `'expert-share'` it is `ceil(capacityFactor · k · S / E)` (GShard/Switch convention).
   */
  capacityFactor: number
  /**
   * Static only. fairseq's `moe_eval_capacity_token_fraction`: capacity `ceil(fraction · S)`.
   * When set it wins over `capacityFactor` and `capacityRule`. `null` = unset.
   */
  capacityFraction: number | null
  /** Static only: see {@link DynamicGatingOptions.capacityFactor}. */
  capacityRule: CapacityRule
  /**
   * Static only: which pairs claim buffer slots first. `token`: token order, every choice of
   * token 0 before token 1. `choice`: all first choices (slot 0) in token order, then all
   * second choices, like fairseq's `top2gate` (`locations2 += sum(mask1)`).
   */
  priority: 'token' | 'choice'
  /**
   * Dynamic only: what travels to an expert's device. `per-pair`: one row per (token, expert)
   * pair, as the paper's `x[token_of(order)]` gather does. `per-device`: one copy per distinct
   * destination device (co-located experts share it), like core's `exact-size` dispatcher.
   */
  tokenCopies: 'per-pair' | 'per-device'
  /** Bytes of one count in the size exchange (8: PyTorch int64 split sizes). */
  countBytes: number
}

/** The defaults: dynamic gating, and a static baseline at capacity factor 1 in token order. */
export const defaultOptions: DynamicGatingOptions = {
  mode: 'dynamic',
  capacityFactor: 1,
  capacityFraction: null,
  capacityRule: 'batch-fraction',
  priority: 'token',
  tokenCopies: 'per-pair',
  countBytes: 8,
}

/** JSON Schema (draft-07) of {@link DynamicGatingOptions}, defaults merged. */
export const schema: JsonSchema = {
  type: 'object',
  properties: {
    mode: { type: 'string', enum: ['dynamic', 'static'] },
    capacityFactor: { type: 'number', exclusiveMinimum: 0, maximum: MAX_CAPACITY_FACTOR },
    capacityFraction: { type: ['number', 'null'], exclusiveMinimum: 0, maximum: MAX_CAPACITY_FACTOR },
    capacityRule: { type: 'string', enum: ['batch-fraction', 'expert-share'] },
    priority: { type: 'string', enum: ['token', 'choice'] },
    tokenCopies: { type: 'string', enum: ['per-pair', 'per-device'] },
    countBytes: { type: 'integer', minimum: 1, maximum: 16 },
  },
  required: ['mode', 'capacityFactor', 'capacityFraction', 'capacityRule', 'priority', 'tokenCopies', 'countBytes'],
  additionalProperties: false,
}
