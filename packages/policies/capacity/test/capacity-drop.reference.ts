/**
 * Test-only: the object-per-pair host paths the typed ones replaced, kept verbatim as oracles
 * (the typed paths must make exactly their decisions, weights and report order).
 */
import type { DroppedPair, Pair, PolicyOutcome, Routing } from '@moe-route/core'
import { expect } from 'vitest'
import { buildOutcome, checkRouting, compareKeyed, DECODE_SKIPPED, keepWithinCapacity, keyedPairs, renormalize, scopeGroups, skippedOutcome, capacityOf, type CapacityDropOptions, type KeyedPair } from '../src/capacity-drop/index.js'

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

/** device-capacity's `applyDeviceCapacity` before the typed host path (primary devices and budgets passed in). */
export function deviceCapacityReference(
  routing: Routing,
  options: { capacityFactor: number; rounding: 'ceil' | 'floor' | 'round'; renormalize: 'none' | 'model-native' | 'kept'; applyToDecode: boolean; scope: 'global' | 'per-source-device' },
  devices: number,
  primary: Int32Array,
  deviceBudgets: (tokens: number) => number[],
  policy = 'device-capacity',
): PolicyOutcome {
  checkRouting(routing, policy)
  if (routing.decode && !options.applyToDecode) return skippedOutcome(routing, DECODE_SKIPPED)
  const all = keyedPairs(routing, 'score')
  const byToken: KeyedPair[][] = Array.from({ length: routing.tokens }, () => [])
  for (const p of all) byToken[p.token].push(p)
  const kept: Pair[] = []
  const dropped: DroppedPair[] = []
  let capacity = 0
  for (const group of scopeGroups(routing, options.scope)) {
    const T = group.tokens.length
    capacity = Math.max(capacity, capacityOf(options.capacityFactor, T, routing.topK, routing.experts, options.rounding))
    const budgets = deviceBudgets(T)
    const pairs = group.tokens.flatMap((t) => byToken[t])
    const cut = keepWithinCapacity(pairs, devices, (p) => primary[p.expert], (d) => budgets[d], compareKeyed)
    for (const p of cut.kept) kept.push({ token: p.token, expert: p.expert, weight: p.weight })
    for (const p of cut.over) dropped.push({ token: p.token, expert: p.expert, weight: p.weight, reason: 'device-capacity', policy })
  }
  return buildOutcome(routing, { pairs: renormalize(routing, kept, options.renormalize), dropped, capacity })
}

/** expert-drop's `applyExpertDrop` before the typed host path (the skipped experts passed in). */
export function expertDropReference(routing: Routing, options: { renormalize: 'none' | 'model-native' | 'kept'; applyToDecode: boolean }, skipList: number[], policy = 'expert-drop'): PolicyOutcome {
  checkRouting(routing, policy)
  if (routing.decode && !options.applyToDecode) return skippedOutcome(routing, DECODE_SKIPPED)
  const skip = new Set(skipList)
  const { slots, expertIds, weights } = routing
  const kept: Pair[] = []
  const dropped: DroppedPair[] = []
  for (let t = 0; t < routing.tokens; t++) {
    for (let j = 0; j < slots; j++) {
      const e = expertIds[t * slots + j]
      if (e < 0) continue
      const w = weights[t * slots + j]
      if (skip.has(e)) dropped.push({ token: t, expert: e, weight: w, reason: 'expert-drop', policy })
      else kept.push({ token: t, expert: e, weight: w })
    }
  }
  return buildOutcome(routing, { pairs: renormalize(routing, kept, options.renormalize), dropped, capacity: null })
}

/** expert-drop's `lowestLoadExperts` before the typed host path. */
export function lowestLoadExpertsReference(routing: Routing, n: number): number[] {
  const { experts: E, tokens, slots, expertIds, scores } = routing
  const load = new Float64Array(E)
  const mass = new Float64Array(E)
  for (let t = 0; t < tokens; t++) {
    for (let j = 0; j < slots; j++) {
      const e = expertIds[t * slots + j]
      if (e < 0) continue
      load[e]++
      mass[e] += scores[t * E + e]
    }
  }
  return Array.from({ length: E }, (_, e) => e)
    .sort((a, b) => load[a] - load[b] || mass[a] - mass[b] || a - b)
    .slice(0, n)
    .sort((a, b) => a - b)
}
