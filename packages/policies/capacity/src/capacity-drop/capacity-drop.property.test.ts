import { expertLoad, mulberry32, pairsOf } from '@moe-route/core'
import { policyContext } from '@moe-route/core/testing'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { caseArb, expectAccounting, pairKeys, permutation, permuteTokens } from '../../test/arbitraries.js'
import { capacityOf, createTokenDrop, scopeGroups, type CapacityDropOptions } from './index.js'

const optionsArb: fc.Arbitrary<CapacityDropOptions> = fc.record({
  capacityFactor: fc.constantFrom(0.25, 0.5, 1, 1.25, 1.5, 2, 3),
  rounding: fc.constantFrom('ceil', 'floor', 'round'),
  priority: fc.constantFrom('score', 'first', 'last', 'random'),
  renormalize: fc.constantFrom('none', 'model-native', 'kept'),
  applyToDecode: fc.boolean(),
  scope: fc.constantFrom('global', 'per-source-device'),
})

describe('capacity-drop: properties', () => {
  it('respects the capacity of every expert in every scope group, and drops only where needed', () => {
    fc.assert(
      fc.property(caseArb(), optionsArb, ({ routing, seed }, o) => {
        const out = createTokenDrop(o).apply(routing, policyContext(routing.experts, 1, seed))
        for (const g of scopeGroups(routing, o.scope)) {
          const C = capacityOf(o.capacityFactor, g.tokens.length, routing.topK, routing.experts, o.rounding)
          const inGroup = new Set(g.tokens)
          const before = new Array(routing.experts).fill(0)
          const after = new Array(routing.experts).fill(0)
          for (const p of pairsOf(routing)) if (inGroup.has(p.token)) before[p.expert]++
          for (const p of pairsOf(out.routing)) if (inGroup.has(p.token)) after[p.expert]++
          // Exactly min(load, C) pairs survive at each expert: capacity holds and nothing extra drops.
          for (let e = 0; e < routing.experts; e++) expect(after[e]).toBe(Math.min(before[e], C))
        }
      }),
    )
  })

  it('kept pairs are a subset of the input, and every input pair is kept or reported dropped', () => {
    fc.assert(
      fc.property(caseArb(), optionsArb, ({ routing, seed }, o) => {
        const out = createTokenDrop(o).apply(routing, policyContext(routing.experts, 1, seed))
        const before = new Set(pairKeys(routing))
        for (const k of pairKeys(out.routing)) expect(before.has(k)).toBe(true)
        expectAccounting(routing, out, 'capacity-drop')
        expect(out.dropped.every((d) => d.reason === 'capacity')).toBe(true)
        expect(out.added ?? []).toEqual([])
      }),
    )
  })

  it('score priority does not depend on batch order: permuting tokens permutes the result', () => {
    fc.assert(
      fc.property(caseArb({ distinct: true }), fc.constantFrom(0.5, 1, 1.5), fc.integer(), ({ routing }, capacityFactor, pseed) => {
        const o = { capacityFactor, scope: 'global' as const }
        const perm = permutation(routing.tokens, pseed)
        const a = createTokenDrop(o).apply(routing, policyContext(routing.experts))
        const b = createTokenDrop(o).apply(permuteTokens(routing, perm), policyContext(routing.experts))
        // Token `to` of the permuted batch is token perm[to] of the original.
        const mapped = pairsOf(b.routing).map((p) => `${perm[p.token]}:${p.expert}`).sort()
        expect(mapped).toEqual(pairKeys(a.routing))
      }),
    )
  })

  it('first/last priority is batch-order dependent (the paper\'s instability), but keeps the right end', () => {
    fc.assert(
      fc.property(caseArb(), ({ routing }) => {
        const first = createTokenDrop({ capacityFactor: 0.5, priority: 'first' }).apply(routing, policyContext(routing.experts))
        const last = createTokenDrop({ capacityFactor: 0.5, priority: 'last' }).apply(routing, policyContext(routing.experts))
        const keptMaxFirst = new Array(routing.experts).fill(-1)
        for (const p of pairsOf(first.routing)) keptMaxFirst[p.expert] = Math.max(keptMaxFirst[p.expert], p.token)
        for (const d of first.dropped) expect(d.token).toBeGreaterThan(keptMaxFirst[d.expert])
        const keptMinLast = new Array(routing.experts).fill(Infinity)
        for (const p of pairsOf(last.routing)) keptMinLast[p.expert] = Math.min(keptMinLast[p.expert], p.token)
        for (const d of last.dropped) expect(d.token).toBeLessThan(keptMinLast[d.expert])
      }),
    )
  })

  it('is deterministic: same input and seed, same outcome (random priority included)', () => {
    fc.assert(
      fc.property(caseArb(), optionsArb, ({ routing, seed }, o) => {
        const a = createTokenDrop(o).apply(routing, { ...policyContext(routing.experts), random: mulberry32(seed) })
        const b = createTokenDrop(o).apply(routing, { ...policyContext(routing.experts), random: mulberry32(seed) })
        expect(b).toEqual(a)
      }),
    )
  })

  it('global load after ≤ C and max load never grows', () => {
    fc.assert(
      fc.property(caseArb(), fc.constantFrom(0.5, 1, 2), ({ routing }, capacityFactor) => {
        const out = createTokenDrop({ capacityFactor }).apply(routing, policyContext(routing.experts))
        const C = out.capacity ?? Infinity
        const after = expertLoad(out.routing)
        expect(Math.max(0, ...after)).toBeLessThanOrEqual(Math.max(C, 0))
        expect(Math.max(0, ...after)).toBeLessThanOrEqual(Math.max(0, ...expertLoad(routing)))
      }),
    )
  })
})
