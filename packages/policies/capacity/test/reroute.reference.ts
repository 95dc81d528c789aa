/**
 * Test-only: the object-per-pair host path of reroute that the typed one replaced, kept
 * verbatim as the oracle (same decisions, weights and report order).
 */
import type { DroppedPair, Pair, PolicyOutcome, ReroutedPair, Routing } from '@moe-route/core'
import { buildOutcome, capacityOf, checkRouting, DECODE_SKIPPED, keepWithinCapacity, nativeDenominators, nativeWeight, renormalize, scopeGroups, skippedOutcome } from '../src/shared/index.js'
import type { RerouteOptions } from '../src/reroute/index.js'

const POLICY_NAME = 'reroute'

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
export function rerouteReference(routing: Routing, options: RerouteOptions, policy = POLICY_NAME): PolicyOutcome {
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

