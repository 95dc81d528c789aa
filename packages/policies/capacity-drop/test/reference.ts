/**
 * Test-only: the object-per-pair host paths the typed ones replaced, kept verbatim as oracles
 * (the typed paths must make exactly their decisions, weights and report order).
 */
import type { DroppedPair, Pair, PolicyOutcome, Routing } from '@moe-route/core'
import { expect } from 'vitest'
import { buildOutcome, checkRouting, compareKeyed, DECODE_SKIPPED, keepWithinCapacity, keyedPairs, renormalize, scopeGroups, skippedOutcome, capacityOf, type CapacityDropOptions, type KeyedPair } from '../src/index.js'

/** capacity-drop's `tokenDrop` before the typed host path. */
export function tokenDropReference(routing: Routing, options: CapacityDropOptions, random?: () => number, policy = 'capacity-drop'): PolicyOutcome {
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

/** A routing's fields as plain arrays (bit-exact weights). */
export function plainRouting(r: Routing) {
  return {
    tokens: r.tokens,
    experts: r.experts,
    topK: r.topK,
    slots: r.slots,
    normalizeTopK: r.normalizeTopK,
    decode: r.decode,
    sourceDevice: r.sourceDevice ? [...r.sourceDevice] : undefined,
    expertIds: [...r.expertIds],
    weights: [...r.weights],
  }
}

/** Expects two outcomes to be the same decisions: routing, reported pairs, capacity and skip reason. */
export function expectSameOutcome(actual: PolicyOutcome, expected: PolicyOutcome): void {
  expect(plainRouting(actual.routing)).toEqual(plainRouting(expected.routing))
  expect([...actual.dropped]).toEqual([...expected.dropped])
  expect(actual.rerouted ? [...actual.rerouted] : []).toEqual(expected.rerouted ? [...expected.rerouted] : [])
  expect(actual.added ? [...actual.added] : []).toEqual(expected.added ? [...expected.added] : [])
  expect(actual.capacity).toEqual(expected.capacity)
  expect(actual.skipped).toEqual(expected.skipped)
}
