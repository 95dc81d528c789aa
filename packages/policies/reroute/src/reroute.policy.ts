/**
 * The `reroute` policy: Capacity-Aware Token Reroute, the multi-round method of the paper's v1
 * (SPEC A.4, official code `883bccb` `adjust_tokens`). Over-capacity experts drop their
 * lowest-score pairs; those tokens re-select their next-best experts by score; capacity is
 * enforced again; after `rounds` passes whatever is still over capacity is dropped.
 */
import { definePolicy, type DroppedPair, type Pair, type PolicyContext, type PolicyOutcome, type ReroutedPair, type Routing, type RoutingPolicy } from '@moe-route/core'
import {
  buildOutcome,
  capacityOf,
  checkRouting,
  DECODE_SKIPPED,
  keepWithinCapacity,
  nativeDenominators,
  nativeWeight,
  renormalize,
  scopeGroups,
  skippedOutcome,
} from '@moe-route/policy-capacity-drop'
import { defaultOptions, schema, type RerouteOptions } from './reroute.schema.js'
import { rerouteStage } from './reroute.wgsl.js'

/** npm name of this package (equals package.json `name`). */
export const PACKAGE_NAME = '@moe-route/policy-reroute'
/** Version of this package (equals package.json `version`). */
export const PACKAGE_VERSION = '0.1.0'
/** Policy name used in configs, errors and dropped-pair reports. */
export const POLICY_NAME = 'reroute'

interface Sel {
  readonly token: number
  readonly expert: number
  readonly score: number
}

const byScore = (a: Sel, b: Sel) => b.score - a.score || a.token - b.token || a.expert - b.expert

/**
 * Runs the multi-round reroute on one group of tokens; returns the final experts per token.
 * A token aims to hold as many experts as it had in the input (`input[t].length`, usually k).
 */
function rerouteGroup(routing: Routing, tokens: readonly number[], input: readonly number[][], C: number, rounds: number): Map<number, number[]> {
  const { experts: E, scores } = routing
  const sel = new Map<number, number[]>(tokens.map((t) => [t, input[t].slice()]))
  const banned = new Set<number>()
  let under: number[] = []
  for (let r = 1; r <= rounds; r++) {
    if (r > 1) {
      for (const t of under) {
        const have = sel.get(t)!
        const want = input[t].length - have.length
        // Next-best experts by score (ties: lower expert), skipping chosen and banned ones.
        const options: number[] = []
        for (let e = 0; e < E; e++) if (!banned.has(t * E + e) && !have.includes(e)) options.push(e)
        options.sort((a, b) => scores[t * E + b] - scores[t * E + a] || a - b)
        have.push(...options.slice(0, want))
      }
    }
    const pairs: Sel[] = []
    for (const t of tokens) for (const e of sel.get(t)!) pairs.push({ token: t, expert: e, score: scores[t * E + e] })
    const cut = keepWithinCapacity(pairs, E, (p) => p.expert, () => C, byScore)
    if (cut.over.length === 0) break
    for (const p of cut.over) {
      banned.add(p.token * E + p.expert)
      const list = sel.get(p.token)!
      list.splice(list.indexOf(p.expert), 1)
    }
    under = tokens.filter((t) => sel.get(t)!.length < input[t].length)
  }
  return sel
}

/**
 * Applies Token Reroute to one routing (pure). Input pairs that end at another expert are
 * reported in `rerouted` (a token's lost experts, best score first, are matched with its new
 * experts, best score first); the rest of the lost pairs are dropped with reason
 * `reroute-exhausted`.
 */
export function applyReroute(routing: Routing, options: RerouteOptions, policy = POLICY_NAME): PolicyOutcome {
  checkRouting(routing, policy)
  if (routing.decode && !options.applyToDecode) return skippedOutcome(routing, DECODE_SKIPPED)
  const { experts: E, slots, expertIds, weights, scores } = routing
  const input: number[][] = Array.from({ length: routing.tokens }, () => [])
  const inputWeight = new Map<number, number>()
  for (let t = 0; t < routing.tokens; t++) {
    for (let j = 0; j < slots; j++) {
      const e = expertIds[t * slots + j]
      if (e < 0) continue
      input[t].push(e)
      inputWeight.set(t * E + e, weights[t * slots + j])
    }
  }
  const den = nativeDenominators(routing)
  const pairs: Pair[] = []
  const dropped: DroppedPair[] = []
  const moves: { token: number; from: number; to: number }[] = []
  let capacity = 0
  for (const group of scopeGroups(routing, options.scope)) {
    const C = capacityOf(options.capacityFactor, group.tokens.length, routing.topK, E, options.rounding)
    capacity = Math.max(capacity, C)
    const finalSel = rerouteGroup(routing, group.tokens, input, C, options.rounds)
    for (const t of group.tokens) {
      const fin = finalSel.get(t)!
      const desc = (a: number, b: number) => scores[t * E + b] - scores[t * E + a] || a - b
      const lost = input[t].filter((e) => !fin.includes(e)).sort(desc)
      const gained = fin.filter((e) => !input[t].includes(e)).sort(desc)
      for (const e of fin) {
        const w = inputWeight.get(t * E + e)
        pairs.push({ token: t, expert: e, weight: w ?? nativeWeight(routing, den, t, e) })
      }
      lost.forEach((from, i) => {
        if (i < gained.length) moves.push({ token: t, from, to: gained[i] })
        else dropped.push({ token: t, expert: from, weight: inputWeight.get(t * E + from)!, reason: 'reroute-exhausted', policy })
      })
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
 * const policy = createReroute({ capacityFactor: 1, rounds: 3 })
 * const { routing: rerouted, rerouted: moves } = policy.apply(routing, ctx)
 */
export function createReroute(options: Partial<RerouteOptions> = {}): RoutingPolicy & { readonly options: Readonly<RerouteOptions> } {
  const o: RerouteOptions = { ...defaultOptions, ...options }
  return {
    name: POLICY_NAME,
    options: o,
    apply: (routing: Routing, _ctx: PolicyContext) => applyReroute(routing, o),
    lower: (ctx) => rerouteStage(o, ctx),
  }
}

/**
 * The `reroute` policy plugin. Select it in a config with
 * `{ "use": "reroute", "options": { "capacityFactor": 1.5, "rounds": 2 } }`.
 * @example
 * import reroute from '@moe-route/policy-reroute'
 * registry.register(reroute)
 */
export const reroute = definePolicy<RerouteOptions>({
  meta: {
    name: POLICY_NAME,
    package: PACKAGE_NAME,
    version: PACKAGE_VERSION,
    core: '^0.1.0',
    description: 'Capacity-Aware Token Reroute (paper v1): drop by score, re-select next-best experts, repeat for R rounds',
    schema,
    defaultOptions,
    device: ['wgsl'],
    docs: { url: 'https://github.com/moe-route/moe-route/tree/main/packages/policies/reroute#readme' },
  },
  create: (options) => createReroute(options),
})
