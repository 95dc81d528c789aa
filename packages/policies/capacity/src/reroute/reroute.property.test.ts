import { expertLoad, pairsOf } from '@moe-route/core'
import { policyContext } from '@moe-route/core/testing'
import { capacityOf, scopeGroups } from '../shared/index.js'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { caseArb, expectAccounting, pairKeys, permutation, permuteTokens } from '../../test/arbitraries.js'
import { createReroute, type RerouteOptions } from './index.js'

const optionsArb: fc.Arbitrary<RerouteOptions> = fc.record({
  capacityFactor: fc.constantFrom(0.25, 0.5, 1, 1.5, 2),
  rounding: fc.constantFrom('ceil', 'floor', 'round'),
  rounds: fc.integer({ min: 1, max: 5 }),
  renormalize: fc.constantFrom('none', 'model-native', 'kept'),
  applyToDecode: fc.boolean(),
  scope: fc.constantFrom('global', 'per-source-device'),
})

describe('reroute: properties', () => {
  it('capacity holds per expert and group after the last round; tokens never exceed their input count', () => {
    fc.assert(
      fc.property(caseArb(), optionsArb, ({ routing }, o) => {
        const out = createReroute(o).apply(routing, policyContext(routing.experts))
        for (const g of scopeGroups(routing, o.scope)) {
          const C = capacityOf(o.capacityFactor, g.tokens.length, routing.topK, routing.experts, o.rounding)
          const inGroup = new Set(g.tokens)
          const load = new Array(routing.experts).fill(0)
          for (const p of pairsOf(out.routing)) if (inGroup.has(p.token)) load[p.expert]++
          for (const l of load) expect(l).toBeLessThanOrEqual(C)
        }
        const before = new Array(routing.tokens).fill(0)
        const after = new Array(routing.tokens).fill(0)
        for (const p of pairsOf(routing)) before[p.token]++
        for (const p of pairsOf(out.routing)) after[p.token]++
        after.forEach((n, t) => expect(n).toBeLessThanOrEqual(before[t]))
      }),
    )
  })

  it('every input pair is kept, rerouted or dropped (reroute-exhausted)', () => {
    fc.assert(
      fc.property(caseArb(), optionsArb, ({ routing }, o) => {
        const out = createReroute(o).apply(routing, policyContext(routing.experts))
        expectAccounting(routing, out, 'reroute')
        expect(out.dropped.every((d) => d.reason === 'reroute-exhausted')).toBe(true)
        // With one round nothing is rerouted.
        if (o.rounds === 1) expect(out.rerouted).toEqual([])
      }),
    )
  })

  it('rerouting keeps at least as many pairs as one-round drop and never more than capacity allows', () => {
    fc.assert(
      fc.property(caseArb(), fc.constantFrom(0.5, 1, 1.5), fc.integer({ min: 2, max: 4 }), ({ routing }, capacityFactor, rounds) => {
        const one = createReroute({ capacityFactor, rounds: 1 }).apply(routing, policyContext(routing.experts))
        const many = createReroute({ capacityFactor, rounds }).apply(routing, policyContext(routing.experts))
        const n = (r: typeof one) => expertLoad(r.routing).reduce((a, b) => a + b, 0)
        expect(n(many)).toBeGreaterThanOrEqual(n(one))
      }),
    )
  })

  it('does not depend on batch order', () => {
    fc.assert(
      fc.property(caseArb({ distinct: true }), optionsArb, fc.integer(), ({ routing }, o, pseed) => {
        const perm = permutation(routing.tokens, pseed)
        const a = createReroute(o).apply(routing, policyContext(routing.experts))
        const b = createReroute(o).apply(permuteTokens(routing, perm), policyContext(routing.experts))
        expect(pairsOf(b.routing).map((p) => `${perm[p.token]}:${p.expert}`).sort()).toEqual(pairKeys(a.routing))
      }),
    )
  })

  it('is deterministic', () => {
    fc.assert(
      fc.property(caseArb(), optionsArb, ({ routing }, o) => {
        expect(createReroute(o).apply(routing, policyContext(routing.experts))).toEqual(createReroute(o).apply(routing, policyContext(routing.experts)))
      }),
    )
  })
})
