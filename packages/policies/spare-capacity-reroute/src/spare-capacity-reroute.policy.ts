/**
 * The `spare-capacity-reroute` policy (beyond the paper): score token drop, then each
 * overflow pair moves, in one pass, to the highest-scoring expert of its token that still has
 * room under the same capacity C and that the token does not already use. Nothing is
 * re-dropped, so every expert stays within C and each overflow pair is handled once.
 */
import { definePolicy, type DroppedPair, type Pair, type PolicyContext, type PolicyOutcome, type ReroutedPair, type Routing, type RoutingPolicy } from '@moe-route/core'
import {
  buildOutcome,
  capacityOf,
  checkRouting,
  compareKeyed,
  DECODE_SKIPPED,
  keepWithinCapacity,
  keyedPairs,
  nativeDenominators,
  nativeWeight,
  renormalize,
  scopeGroups,
  skippedOutcome,
  type KeyedPair,
} from '@moe-route/policy-capacity-drop'
import { defaultOptions, schema, type SpareCapacityRerouteOptions } from './spare-capacity-reroute.schema.js'
import { spareCapacityRerouteStage } from './spare-capacity-reroute.wgsl.js'

/** npm name of this package (equals package.json `name`). */
export const PACKAGE_NAME = '@moe-route/policy-spare-capacity-reroute'
/** Version of this package (equals package.json `version`). */
export const PACKAGE_VERSION = '0.1.0'
/** Policy name used in configs, errors and dropped-pair reports. */
export const POLICY_NAME = 'spare-capacity-reroute'

/**
 * Applies spare-capacity reroute to one routing (pure). Overflow pairs are visited best score
 * first (then token, then expert) and each moves to its token's best expert with room
 * (score descending, then expert ascending), within the token's top-`maxRank` when set.
 * Pairs with nowhere to go are dropped with reason `reroute-exhausted`.
 */
export function applySpareCapacityReroute(routing: Routing, options: SpareCapacityRerouteOptions, policy = POLICY_NAME): PolicyOutcome {
  checkRouting(routing, policy)
  if (routing.decode && !options.applyToDecode) return skippedOutcome(routing, DECODE_SKIPPED)
  const { experts: E, scores } = routing
  const all = keyedPairs(routing, 'score')
  const byToken: KeyedPair[][] = Array.from({ length: routing.tokens }, () => [])
  for (const p of all) byToken[p.token].push(p)
  const den = nativeDenominators(routing)
  const pairs: Pair[] = []
  const dropped: DroppedPair[] = []
  const moves: { token: number; from: number; to: number }[] = []
  let capacity = 0
  for (const group of scopeGroups(routing, options.scope)) {
    const C = capacityOf(options.capacityFactor, group.tokens.length, routing.topK, E, options.rounding)
    capacity = Math.max(capacity, C)
    const cut = keepWithinCapacity(group.tokens.flatMap((t) => byToken[t]), E, (p) => p.expert, () => C, compareKeyed)
    const load = new Int32Array(E)
    const used = new Map<number, Set<number>>()
    const uses = (t: number) => {
      let s = used.get(t)
      if (!s) used.set(t, (s = new Set(byToken[t].map((p) => p.expert))))
      return s
    }
    for (const p of cut.kept) {
      load[p.expert]++
      pairs.push({ token: p.token, expert: p.expert, weight: p.weight })
    }
    // cut.over is grouped by expert; visit overflow pairs globally best-first.
    for (const p of cut.over.slice().sort(compareKeyed)) {
      const t = p.token
      const mine = uses(t)
      const limit = options.maxRank === null ? E : Math.min(E, options.maxRank)
      // The token's experts by score descending, then expert ascending.
      const ranked = Array.from({ length: E }, (_, e) => e).sort((a, b) => scores[t * E + b] - scores[t * E + a] || a - b)
      let to = -1
      for (let i = 0; i < limit; i++) {
        const e = ranked[i]
        if (!mine.has(e) && load[e] < C) {
          to = e
          break
        }
      }
      if (to < 0) {
        dropped.push({ token: t, expert: p.expert, weight: p.weight, reason: 'reroute-exhausted', policy })
        continue
      }
      load[to]++
      mine.add(to)
      moves.push({ token: t, from: p.expert, to })
      pairs.push({ token: t, expert: to, weight: nativeWeight(routing, den, t, to) })
    }
  }
  const final = renormalize(routing, pairs, options.renormalize)
  const finalWeight = new Map(final.map((p) => [p.token * E + p.expert, p.weight]))
  const rerouted: ReroutedPair[] = moves.map((m) => ({ ...m, weight: finalWeight.get(m.token * E + m.to)!, policy }))
  return buildOutcome(routing, { pairs: final, dropped, rerouted, capacity })
}

/**
 * Creates the policy directly, without a registry (defaults merged under `options`).
 * @example
 * const policy = createSpareCapacityReroute({ capacityFactor: 1.25, maxRank: 4 })
 * const outcome = policy.apply(routing, ctx)
 */
export function createSpareCapacityReroute(
  options: Partial<SpareCapacityRerouteOptions> = {},
): RoutingPolicy & { readonly options: Readonly<SpareCapacityRerouteOptions> } {
  const o: SpareCapacityRerouteOptions = { ...defaultOptions, ...options }
  return {
    name: POLICY_NAME,
    options: o,
    apply: (routing: Routing, _ctx: PolicyContext) => applySpareCapacityReroute(routing, o),
    lower: (ctx) => spareCapacityRerouteStage(o, ctx),
  }
}

/**
 * The `spare-capacity-reroute` policy plugin. Select it in a config with
 * `{ "use": "spare-capacity-reroute", "options": { "capacityFactor": 1.5 } }`.
 * @example
 * import spareCapacityReroute from '@moe-route/policy-spare-capacity-reroute'
 * registry.register(spareCapacityReroute)
 */
export const spareCapacityReroute = definePolicy<SpareCapacityRerouteOptions>({
  meta: {
    name: POLICY_NAME,
    package: PACKAGE_NAME,
    version: PACKAGE_VERSION,
    core: '^0.1.0',
    description: 'Score token drop, then each overflow pair moves once to its best expert that still has room',
    schema,
    defaultOptions,
    device: ['wgsl'],
    docs: { url: 'https://github.com/moe-route/moe-route/tree/main/packages/policies/spare-capacity-reroute#readme' },
  },
  create: (options) => createSpareCapacityReroute(options),
})
