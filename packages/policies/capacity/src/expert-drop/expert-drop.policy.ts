/**
 * The `expert-drop` baseline of Capacity-Aware Inference (Table 2; SPEC A.5 end): skip whole
 * experts with the lowest load in each batch. Implements the intended rule, load = pairs routed
 * to the expert in this batch (the v1 code summed over experts per token, which looks like a bug).
 */
import { defineCapacityPolicy, type CapacityPolicyInstance } from '../define-capacity-policy.js'
import { type Plugin, pairScores, type PolicyOutcome, type Routing } from '@moe-route/core'
import { capacityOutcome, checkRouting, DECODE_SKIPPED, outputPairs, pairTable, pushPair, skippedOutcome } from '../shared/index.js'
import { defaultOptions, schema, type ExpertDropOptions } from './expert-drop.schema.js'
import { expertDropStage } from './expert-drop.wgsl.js'

export { PACKAGE_NAME, PACKAGE_VERSION } from '../meta.js'
/** Policy name used in configs, errors and dropped-pair reports. */
export const POLICY_NAME = 'expert-drop'

/** How many experts `drop` means for E experts: a count (capped at E) or ⌊fraction·E⌋. */
export function expertsToDrop(drop: number, experts: number): number {
  return Math.min(experts, drop < 1 ? Math.floor(drop * experts + 1e-9) : Math.floor(drop))
}

/**
 * The experts skipped in a batch: the `n` lowest by load (pairs), ties by lower routed gate
 * mass (Σ scores of their pairs), then lower expert index. Idle experts count (skipping them
 * changes nothing), as in the literal rule.
 */
export function lowestLoadExperts(routing: Routing, n: number): number[] {
  const { experts: E, expertIds } = routing
  const top = pairScores(routing)
  const load = new Float64Array(E)
  const mass = new Float64Array(E)
  for (let i = 0; i < expertIds.length; i++) {
    const e = expertIds[i]
    if (e < 0) continue
    load[e]++
    mass[e] += top[i]
  }
  return Array.from({ length: E }, (_, e) => e)
    .sort((a, b) => load[a] - load[b] || mass[a] - mass[b] || a - b)
    .slice(0, n)
    .sort((a, b) => a - b)
}

/** Applies the expert-drop baseline to one routing (pure). Dropped pairs have reason `expert-drop`. */
export function applyExpertDrop(routing: Routing, options: ExpertDropOptions, policy = POLICY_NAME): PolicyOutcome {
  checkRouting(routing, policy)
  if (routing.decode && !options.applyToDecode) return skippedOutcome(routing, DECODE_SKIPPED)
  const skip = new Uint8Array(routing.experts)
  for (const e of lowestLoadExperts(routing, expertsToDrop(options.drop, routing.experts))) skip[e] = 1
  const table = pairTable(routing)
  const top = pairScores(routing)
  const over = new Uint8Array(table.count)
  const out = outputPairs(table.count)
  for (let p = 0; p < table.count; p++) {
    if (skip[table.expert[p]]) over[p] = 1
    else pushPair(out, table.token[p], table.expert[p], routing.weights[table.slot[p]], top[table.slot[p]])
  }
  return capacityOutcome(routing, out, { table, over, reason: 'expert-drop', policy, capacity: null, renormalize: options.renormalize })
}

const family = defineCapacityPolicy<ExpertDropOptions>({
  name: POLICY_NAME,
  description: 'Expert Drop baseline: skip the lowest-load experts of each batch (count or fraction of E)',
  schema,
  defaultOptions,
  apply: (routing, o) => applyExpertDrop(routing, o),
  lower: (o, ctx) => expertDropStage(o, ctx, expertsToDrop(o.drop, ctx.model.experts)),
})

/**
 * Creates the policy directly, without a registry (defaults merged under `options`).
 * @example
 * const policy = createExpertDrop({ drop: 1 }) // Mixtral-like: skip the least-loaded of 8
 * const outcome = policy.apply(routing, ctx)
 */
export const createExpertDrop: (options?: Partial<ExpertDropOptions>) => CapacityPolicyInstance<ExpertDropOptions> = family.create

/**
 * The `expert-drop` policy plugin. Select it in a config with
 * `{ "use": "expert-drop", "options": { "drop": 0.1 } }`.
 * @example
 * import { expertDrop } from '@moe-route/policy-capacity'
 * registry.register(expertDrop)
 */
export const expertDrop: Plugin<'policy', ExpertDropOptions> = family.plugin
