/**
 * The `capacity-drop` policy: Capacity-Aware Token Drop (He et al., "Capacity-Aware Inference",
 * SPEC A.3). Each expert keeps at most C = ⌈γ·k·T/E⌉ pairs; a dropped pair removes only that
 * (token, expert), the token keeps its other experts.
 */
import { defineCapacityPolicy, type CapacityPolicyInstance } from '../define-capacity-policy.js'
import { type Plugin, deriveRouting, pairScores, type PolicyOutcome, type Routing } from '@moe-route/core'
import { defaultOptions, schema, type CapacityDropOptions } from './capacity-drop.schema.js'
import { checkRouting } from '../shared/errors.js'
import { DECODE_SKIPPED, skippedOutcome } from '../shared/outcome.js'
import { capacityCut, capacityOutcome, expertCounts, isCanonicalLayout, outputPairs, pairGroups, pairTable, priorityKeys } from '../shared/pair-table.js'
import { capacityOf } from '../shared/scope.js'
import { capacityDropStage } from './capacity-drop.wgsl.js'

export { PACKAGE_NAME, PACKAGE_VERSION } from '../meta.js'
/** Policy name used in configs, errors and dropped-pair reports. */
export const POLICY_NAME = 'capacity-drop'

/**
 * Applies Token Drop to one routing (pure: same input and same `random` draws, same output).
 * Per scope group of T tokens, C = rounding(γ·k·T/E); every expert with more than C pairs
 * from the group keeps C of them by `priority` and drops the rest with reason `capacity`.
 * Typed arrays throughout (no object per pair); `dropped` is listed only when read.
 * @param random Uniform [0, 1) generator, used only by the `random` priority.
 */
export function tokenDrop(routing: Routing, options: CapacityDropOptions, random?: () => number, policy = POLICY_NAME): PolicyOutcome {
  checkRouting(routing, policy)
  if (routing.decode && !options.applyToDecode) return skippedOutcome(routing, DECODE_SKIPPED)
  // nothing over capacity, weights kept, layout already canonical: the output is the input
  // (the random priority still goes the long way: it draws one number per pair)
  if (options.scope === 'global' && options.renormalize === 'none' && options.priority !== 'random') {
    const C = capacityOf(options.capacityFactor, routing.tokens, routing.topK, routing.experts, options.rounding)
    const counts = expertCounts(routing)
    let fits = true
    for (let e = 0; e < counts.length && fits; e++) if (counts[e] > C) fits = false
    if (fits && isCanonicalLayout(routing)) {
      return { routing: deriveRouting(routing, { slots: routing.slots, expertIds: routing.expertIds, weights: routing.weights }), dropped: [], capacity: C }
    }
  }
  const table = pairTable(routing)
  const keys = priorityKeys(routing, table, options.priority, random)
  const over = new Uint8Array(table.count)
  let capacity = 0
  for (const group of pairGroups(routing, table, options.scope)) {
    const C = capacityOf(options.capacityFactor, group.tokens, routing.topK, routing.experts, options.rounding)
    capacity = Math.max(capacity, C)
    capacityCut(table, group.pairs, table.expert, routing.experts, () => C, keys, over)
  }
  // kept pairs per token; with `kept` weights in expert order (the order the reference sums
  // them in); otherwise the layout sorts them by weight and expert whatever the order
  const out = outputPairs(table.count)
  const top = pairScores(routing)
  const byExpert = options.renormalize === 'kept'
  const idx = new Int32Array(routing.slots)
  const { tokenStart, expert, slot } = table
  const weights = routing.weights
  const { token: oToken, expert: oExpert, weight: oWeight, score: oScore } = out
  let o = 0
  for (let t = 0; t < routing.tokens; t++) {
    let n = 0
    for (let p = tokenStart[t]; p < tokenStart[t + 1]; p++) {
      if (over[p]) continue
      let j = n++
      while (byExpert && j > 0 && expert[idx[j - 1]] > expert[p]) {
        idx[j] = idx[j - 1]
        j--
      }
      idx[j] = p
    }
    for (let i = 0; i < n; i++, o++) {
      const p = idx[i]
      oToken[o] = t
      oExpert[o] = expert[p]
      oWeight[o] = weights[slot[p]]
      oScore[o] = top[slot[p]]
    }
  }
  out.count = o
  return capacityOutcome(routing, out, { table, over, reason: 'capacity', policy, capacity, renormalize: options.renormalize })
}

const family = defineCapacityPolicy<CapacityDropOptions>({
  name: POLICY_NAME,
  description: 'Capacity-Aware Token Drop: each expert keeps at most ⌈γ·k·T/E⌉ pairs (by gate score, order or random)',
  schema,
  defaultOptions,
  apply: (routing, o, ctx) => tokenDrop(routing, o, ctx.random),
  lower: (o, ctx) => capacityDropStage(o, ctx),
})

/**
 * Creates the policy directly, without a registry (defaults merged under `options`; the
 * registry path validates options against `schema` first).
 * @example
 * const policy = createTokenDrop({ capacityFactor: 1.5, priority: 'score' })
 * const { routing: capped, dropped } = policy.apply(routing, { placement, batchId: 0, random: Math.random })
 */
export const createTokenDrop: (options?: Partial<CapacityDropOptions>) => CapacityPolicyInstance<CapacityDropOptions> = family.create

/**
 * The `capacity-drop` policy plugin. Select it in a config with
 * `{ "use": "capacity-drop", "options": { "capacityFactor": 1.5 } }`.
 * @example
 * import { capacityDrop } from '@moe-route/policy-capacity'
 * registry.register(capacityDrop)
 */
export const capacityDrop: Plugin<'policy', CapacityDropOptions> = family.plugin
