/**
 * Test-only helpers shared by the capacity-aware policy packages' property tests (not shipped:
 * outside `src`). Routings are built from distinct or tied score rows with core's softmax-top-k.
 */
import { mulberry32, pairsOf, softmaxTopK, type PolicyOutcome, type Routing } from '@moe-route/core'
import fc from 'fast-check'
import { expect } from 'vitest'

/** A generated batch. */
export interface Case {
  readonly routing: Routing
  /** Devices of the placement to run with (≥ 1). */
  readonly devices: number
  readonly seed: number
}

/**
 * Routings with T ≤ maxTokens, E ≤ maxExperts, k ≤ 3, scores that are either distinct
 * (`distinct: true`, needed for permutation properties) or drawn from a few levels (many ties).
 */
export function caseArb(opts: { maxTokens?: number; maxExperts?: number; distinct?: boolean; minDevices?: number } = {}): fc.Arbitrary<Case> {
  const maxT = opts.maxTokens ?? 32
  const maxE = opts.maxExperts ?? 8
  return fc
    .record({
      tokens: fc.integer({ min: 0, max: maxT }),
      experts: fc.integer({ min: Math.max(2, opts.minDevices ?? 1), max: maxE }),
      seed: fc.integer({ min: 0, max: 0x7fffffff }),
      normalizeTopK: fc.boolean(),
      ties: opts.distinct ? fc.constant(false) : fc.boolean(),
      withSource: fc.boolean(),
    })
    .chain((s) =>
      fc.record({
        s: fc.constant(s),
        topK: fc.integer({ min: 1, max: Math.min(3, s.experts) }),
        devices: fc.integer({ min: opts.minDevices ?? 1, max: Math.min(4, s.experts) }),
      }),
    )
    .map(({ s, topK, devices }) => {
      const rnd = mulberry32(s.seed)
      const n = s.tokens * s.experts
      const scores = new Float32Array(n)
      if (s.ties) {
        for (let i = 0; i < n; i++) scores[i] = (1 + Math.floor(rnd() * 3)) / 8
      } else {
        // Distinct values: a shuffled ladder, so no two (token, expert) scores are equal.
        const ladder = Array.from({ length: n }, (_, i) => (i + 1) / (n + 1))
        for (let i = n - 1; i > 0; i--) {
          const j = Math.floor(rnd() * (i + 1))
          ;[ladder[i], ladder[j]] = [ladder[j], ladder[i]]
        }
        scores.set(ladder)
      }
      const sourceDevice = s.withSource ? Int32Array.from({ length: s.tokens }, () => Math.floor(rnd() * devices)) : undefined
      const routing = softmaxTopK({ tokens: s.tokens, experts: s.experts, scores, ...(sourceDevice ? { sourceDevice } : {}) }, topK, s.normalizeTopK)
      return { routing, devices, seed: s.seed }
    })
}

/** Applies a token permutation to a routing's rows (scores and source devices), re-routed. */
export function permuteTokens(r: Routing, perm: readonly number[]): Routing {
  const scores = new Float32Array(r.scores.length)
  perm.forEach((from, to) => scores.set(r.scores.subarray(from * r.experts, (from + 1) * r.experts), to * r.experts))
  const sourceDevice = r.sourceDevice ? Int32Array.from(perm, (from) => r.sourceDevice![from]) : undefined
  return softmaxTopK({ tokens: r.tokens, experts: r.experts, scores, ...(sourceDevice ? { sourceDevice } : {}) }, r.topK, r.normalizeTopK)
}

/** A seeded permutation of 0..n−1. */
export function permutation(n: number, seed: number): number[] {
  const rnd = mulberry32(seed ^ 0x2545f491)
  const p = Array.from({ length: n }, (_, i) => i)
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(rnd() * (i + 1))
    ;[p[i], p[j]] = [p[j], p[i]]
  }
  return p
}

/** Sorted "token:expert" keys of a routing. */
export const pairKeys = (r: Routing): string[] => pairsOf(r).map((p) => `${p.token}:${p.expert}`).sort()

/**
 * The bookkeeping every capacity policy promises: each input pair is kept at its expert,
 * reported rerouted (from it), or reported dropped with a reason and the policy name, and
 * exactly one of these; every output pair that is not an input pair is a reroute target or
 * reported added; no token has the same expert twice.
 */
export function expectAccounting(input: Routing, outcome: PolicyOutcome, policy: string): void {
  const before = new Set(pairKeys(input))
  const after = pairKeys(outcome.routing)
  expect(new Set(after).size).toBe(after.length)
  const afterSet = new Set(after)
  const dropped = outcome.dropped.map((d) => `${d.token}:${d.expert}`)
  const from = (outcome.rerouted ?? []).map((r) => `${r.token}:${r.from}`)
  const to = (outcome.rerouted ?? []).map((r) => `${r.token}:${r.to}`)
  const added = (outcome.added ?? []).map((a) => `${a.token}:${a.expert}`)
  for (const d of outcome.dropped) {
    expect(d.policy).toBe(policy)
    expect(typeof d.reason).toBe('string')
    expect(d.reason.length).toBeGreaterThan(0)
  }
  for (const key of before) {
    const fates = Number(afterSet.has(key)) + dropped.filter((k) => k === key).length + from.filter((k) => k === key).length
    expect(fates, `input pair ${key}`).toBe(1)
  }
  for (const key of [...dropped, ...from]) expect(before.has(key), `reported pair ${key} was in the input`).toBe(true)
  for (const key of after) {
    if (before.has(key)) continue
    expect(to.includes(key) || added.includes(key), `new pair ${key} is reported`).toBe(true)
  }
  for (const key of [...to, ...added]) expect(afterSet.has(key) && !before.has(key), `new pair ${key}`).toBe(true)
  expect(outcome.routing.tokens).toBe(input.tokens)
  expect(outcome.routing.scores).toBe(input.scores)
}
