/**
 * Test-only: the object-per-pair host path of spare-capacity-reroute that the typed one
 * replaced, kept verbatim as the oracle (same decisions, weights and report order).
 */
import type { DroppedPair, Pair, PolicyOutcome, ReroutedPair, Routing } from '@moe-route/core'
import { buildOutcome, capacityOf, checkRouting, compareKeyed, DECODE_SKIPPED, keepWithinCapacity, keyedPairs, nativeDenominators, nativeWeight, renormalize, scopeGroups, skippedOutcome, type KeyedPair } from '../src/shared/index.js'
import type { SpareCapacityRerouteOptions } from '../src/spare-capacity-reroute/index.js'

export function spareCapacityRerouteReference(routing: Routing, options: SpareCapacityRerouteOptions, policy = 'spare-capacity-reroute'): PolicyOutcome {
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

