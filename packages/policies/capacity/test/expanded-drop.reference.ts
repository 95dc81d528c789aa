/**
 * Test-only: the object-per-pair host path of expanded-drop that the typed one replaced, kept
 * verbatim as the oracle (same decisions, weights and report order).
 */
import type { DroppedPair, Pair, PlacementMap, PolicyOutcome, Routing } from '@moe-route/core'
import { buildOutcome, capacityOf, checkRouting, DECODE_SKIPPED, keepWithinCapacity, nativeDenominators, scopeGroups, skippedOutcome } from '../src/shared/index.js'
import { extraCandidates } from '../src/expanded-drop/candidates.js'
import type { ExpandedDropOptions } from '../src/expanded-drop/index.js'

const POLICY_NAME = 'expanded-drop'

interface Candidate {
  readonly token: number
  readonly expert: number
  readonly score: number
}

const byScore = (a: Candidate, b: Candidate) => b.score - a.score || a.token - b.token || a.expert - b.expert

/**
 * Applies Expanded Drop to one routing (pure). Input pairs that lose are dropped with reason
 * `capacity` (or `max-experts-per-token` when `maxExpertsPerToken` removes them); kept
 * candidates that were not input pairs are reported in `added`.
 * @param placement The placement in force (used by `candidates: 'local'` without `localExperts`).
 */
export function expandedDropReference(routing: Routing, options: ExpandedDropOptions, placement?: PlacementMap, policy = POLICY_NAME): PolicyOutcome {
  checkRouting(routing, policy)
  if (routing.decode && !options.applyToDecode) return skippedOutcome(routing, DECODE_SKIPPED)
  const { experts: E, slots, expertIds, weights, scores } = routing
  const extra = extraCandidates(routing, options, placement, policy)
  const inputWeight = new Map<number, number>()
  for (let t = 0; t < routing.tokens; t++) {
    for (let j = 0; j < slots; j++) {
      const e = expertIds[t * slots + j]
      if (e >= 0) inputWeight.set(t * E + e, weights[t * slots + j])
    }
  }
  const mark = new Int32Array(E).fill(-1)
  const keptByToken: Candidate[][] = Array.from({ length: routing.tokens }, () => [])
  const dropped: DroppedPair[] = []
  let capacity = 0
  for (const group of scopeGroups(routing, options.scope)) {
    const C = capacityOf(options.capacityFactor, group.tokens.length, routing.topK, E, options.rounding)
    capacity = Math.max(capacity, C)
    const candidates: Candidate[] = []
    for (const t of group.tokens) {
      const push = (e: number) => {
        if (mark[e] === t) return // de-duplicate: an expert both in the top-k and local
        mark[e] = t
        candidates.push({ token: t, expert: e, score: scores[t * E + e] })
      }
      for (let j = 0; j < slots; j++) if (expertIds[t * slots + j] >= 0) push(expertIds[t * slots + j])
      const more = extra(t)
      for (let i = 0; i < more.length; i++) push(more[i])
    }
    const cut = keepWithinCapacity(candidates, E, (c) => c.expert, () => C, byScore)
    for (const c of cut.kept) keptByToken[c.token].push(c)
    for (const c of cut.over) {
      const w = inputWeight.get(c.token * E + c.expert)
      if (w !== undefined) dropped.push({ token: c.token, expert: c.expert, weight: w, reason: 'capacity', policy })
    }
  }
  const den = options.weights === 'model-native' ? nativeDenominators(routing) : null
  const pairs: Pair[] = []
  const added: Pair[] = []
  const max = options.maxExpertsPerToken
  for (const list of keptByToken) {
    if (max !== null && list.length > max) list.sort(byScore)
    list.forEach((c, i) => {
      const w = inputWeight.get(c.token * E + c.expert)
      if (max !== null && i >= max) {
        if (w !== undefined) dropped.push({ token: c.token, expert: c.expert, weight: w, reason: 'max-experts-per-token', policy })
        return
      }
      const pair = { token: c.token, expert: c.expert, weight: den ? c.score / den[c.token] : c.score }
      pairs.push(pair)
      if (w === undefined) added.push(pair)
    })
  }
  return buildOutcome(routing, { pairs, dropped, added, capacity })
}

