/**
 * The `capacity-drop` policy: Capacity-Aware Token Drop (He et al., "Capacity-Aware Inference",
 * SPEC A.3). Each expert keeps at most C = ⌈γ·k·T/E⌉ pairs; a dropped pair removes only that
 * (token, expert), the token keeps its other experts.
 */
import { definePolicy, type DroppedPair, type Pair, type PolicyContext, type PolicyOutcome, type Routing, type RoutingPolicy } from '@moe-route/core'
import { defaultOptions, schema, type CapacityDropOptions } from './capacity-drop.schema.js'
import { checkRouting } from './shared/errors.js'
import { buildOutcome, DECODE_SKIPPED, skippedOutcome } from './shared/outcome.js'
import { compareKeyed, keepWithinCapacity, keyedPairs, type KeyedPair } from './shared/priority.js'
import { capacityOf, scopeGroups } from './shared/scope.js'
import { renormalize } from './shared/weights.js'
import { capacityDropStage } from './capacity-drop.wgsl.js'

/** npm name of this package (equals package.json `name`). */
export const PACKAGE_NAME = '@moe-route/policy-capacity-drop'
/** Version of this package (equals package.json `version`). */
export const PACKAGE_VERSION = '0.1.0'
/** Policy name used in configs, errors and dropped-pair reports. */
export const POLICY_NAME = 'capacity-drop'

/**
 * Applies Token Drop to one routing (pure: same input and same `random` draws, same output).
 * Per scope group of T tokens, C = rounding(γ·k·T/E); every expert with more than C pairs
 * from the group keeps C of them by `priority` and drops the rest with reason `capacity`.
 * @param random Uniform [0, 1) generator, used only by the `random` priority.
 */
export function tokenDrop(routing: Routing, options: CapacityDropOptions, random?: () => number, policy = POLICY_NAME): PolicyOutcome {
  checkRouting(routing, policy)
  if (routing.decode && !options.applyToDecode) return skippedOutcome(routing, DECODE_SKIPPED)
  const all = keyedPairs(routing, options.priority, random)
  const byToken: KeyedPair[][] = Array.from({ length: routing.tokens }, () => [])
  for (const p of all) byToken[p.token].push(p)
  const kept: Pair[] = []
  const dropped: DroppedPair[] = []
  let capacity = 0
  for (const group of scopeGroups(routing, options.scope)) {
    const C = capacityOf(options.capacityFactor, group.tokens.length, routing.topK, routing.experts, options.rounding)
    capacity = Math.max(capacity, C)
    const pairs = group.tokens.flatMap((t) => byToken[t])
    const cut = keepWithinCapacity(pairs, routing.experts, (p) => p.expert, () => C, compareKeyed)
    for (const p of cut.kept) kept.push({ token: p.token, expert: p.expert, weight: p.weight })
    for (const p of cut.over) dropped.push({ token: p.token, expert: p.expert, weight: p.weight, reason: 'capacity', policy })
  }
  return buildOutcome(routing, { pairs: renormalize(routing, kept, options.renormalize), dropped, capacity })
}

/**
 * Creates the policy directly, without a registry (defaults merged under `options`; the
 * registry path validates options against {@link schema} first).
 * @example
 * const policy = createTokenDrop({ capacityFactor: 1.5, priority: 'score' })
 * const { routing: capped, dropped } = policy.apply(routing, { placement, batchId: 0, random: Math.random })
 */
export function createTokenDrop(options: Partial<CapacityDropOptions> = {}): RoutingPolicy & { readonly options: Readonly<CapacityDropOptions> } {
  const o: CapacityDropOptions = { ...defaultOptions, ...options }
  return {
    name: POLICY_NAME,
    options: o,
    apply: (routing: Routing, ctx: PolicyContext) => tokenDrop(routing, o, ctx.random),
    lower: (ctx) => capacityDropStage(o, ctx),
  }
}

/**
 * The `capacity-drop` policy plugin. Select it in a config with
 * `{ "use": "capacity-drop", "options": { "capacityFactor": 1.5 } }`.
 * @example
 * import capacityDrop from '@moe-route/policy-capacity-drop'
 * registry.register(capacityDrop)
 */
export const capacityDrop = definePolicy<CapacityDropOptions>({
  meta: {
    name: POLICY_NAME,
    package: PACKAGE_NAME,
    version: PACKAGE_VERSION,
    core: '^0.1.0',
    description: 'Capacity-Aware Token Drop: each expert keeps at most ⌈γ·k·T/E⌉ pairs (by gate score, order or random)',
    schema,
    defaultOptions,
    device: ['wgsl'],
    docs: { url: 'https://github.com/moe-route/moe-route/tree/main/packages/policies/capacity-drop#readme' },
  },
  create: (options) => createTokenDrop(options),
})
