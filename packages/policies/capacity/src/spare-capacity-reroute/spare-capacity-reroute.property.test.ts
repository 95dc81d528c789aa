import { pairsOf, topKIndices } from '@moe-route/core'
import { policyContext } from '@moe-route/core/testing'
import { capacityOf, scopeGroups } from '../shared/index.js'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { caseArb, expectAccounting, pairKeys, permutation, permuteTokens } from '../../test/arbitraries.js'
import { createSpareCapacityReroute, type SpareCapacityRerouteOptions } from './index.js'

const optionsArb: fc.Arbitrary<SpareCapacityRerouteOptions> = fc.record({
  capacityFactor: fc.constantFrom(0.25, 0.5, 1, 1.5, 2),
  rounding: fc.constantFrom('ceil', 'floor', 'round'),
  maxRank: fc.constantFrom(null, 1, 2, 4),
  renormalize: fc.constantFrom('none', 'model-native', 'kept'),
  applyToDecode: fc.boolean(),
  scope: fc.constantFrom('global', 'per-source-device'),
})

describe('spare-capacity-reroute: properties', () => {
  it('capacity holds; a pair is dropped only when none of its allowed experts had room', () => {
    fc.assert(
      fc.property(caseArb(), optionsArb, ({ routing }, o) => {
        const out = createSpareCapacityReroute(o).apply(routing, policyContext(routing.experts))
        const E = routing.experts
        for (const g of scopeGroups(routing, o.scope)) {
          const C = capacityOf(o.capacityFactor, g.tokens.length, routing.topK, E, o.rounding)
          const inGroup = new Set(g.tokens)
          const load = new Array(E).fill(0)
          for (const p of pairsOf(out.routing)) if (inGroup.has(p.token)) load[p.expert]++
          for (const l of load) expect(l).toBeLessThanOrEqual(C)
          // Loads only grow during the pass, so at the end every allowed expert of a dropped pair's
          // token is either used by that token or full.
          const uses = (t: number) => new Set([...pairsOf(routing), ...pairsOf(out.routing)].filter((p) => p.token === t).map((p) => p.expert))
          for (const d of out.dropped) {
            if (!inGroup.has(d.token)) continue
            const limit = Math.min(E, o.maxRank ?? E)
            const idx = new Int32Array(limit)
            topKIndices(routing.scores, d.token * E, E, limit, idx)
            const mine = uses(d.token)
            for (const e of idx) expect(mine.has(e) || load[e] >= C).toBe(true)
          }
        }
      }),
    )
  })

  it('every input pair is kept, moved or dropped; moves go to experts the token did not have', () => {
    fc.assert(
      fc.property(caseArb(), optionsArb, ({ routing }, o) => {
        const out = createSpareCapacityReroute(o).apply(routing, policyContext(routing.experts))
        expectAccounting(routing, out, 'spare-capacity-reroute')
        expect(out.dropped.every((d) => d.reason === 'reroute-exhausted')).toBe(true)
        expect(pairsOf(out.routing).length).toBeLessThanOrEqual(pairsOf(routing).length)
      }),
    )
  })

  it('does not depend on batch order', () => {
    fc.assert(
      fc.property(caseArb({ distinct: true }), optionsArb, fc.integer(), ({ routing }, o, pseed) => {
        const perm = permutation(routing.tokens, pseed)
        const a = createSpareCapacityReroute(o).apply(routing, policyContext(routing.experts))
        const b = createSpareCapacityReroute(o).apply(permuteTokens(routing, perm), policyContext(routing.experts))
        expect(pairsOf(b.routing).map((p) => `${perm[p.token]}:${p.expert}`).sort()).toEqual(pairKeys(a.routing))
      }),
    )
  })

  it('is deterministic', () => {
    fc.assert(
      fc.property(caseArb(), optionsArb, ({ routing }, o) => {
        const a = createSpareCapacityReroute(o).apply(routing, policyContext(routing.experts))
        expect(createSpareCapacityReroute(o).apply(routing, policyContext(routing.experts))).toEqual(a)
      }),
    )
  })
})
