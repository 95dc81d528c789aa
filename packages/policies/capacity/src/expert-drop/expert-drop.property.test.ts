import { expertLoad, pairsOf } from '@moe-route/core'
import { policyContext } from '@moe-route/core/testing'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { caseArb, expectAccounting, pairKeys, permutation, permuteTokens } from '../../test/arbitraries.js'
import { createExpertDrop, expertsToDrop, type ExpertDropOptions } from './index.js'

const optionsArb: fc.Arbitrary<ExpertDropOptions> = fc.record({
  drop: fc.constantFrom(0.1, 0.25, 0.5, 0.9, 1, 2, 3),
  renormalize: fc.constantFrom('none', 'model-native', 'kept'),
  applyToDecode: fc.boolean(),
})

describe('expert-drop: properties', () => {
  it('skips whole experts: n experts lose every pair, the others keep all, and skipped loads ≤ kept loads', () => {
    fc.assert(
      fc.property(caseArb(), optionsArb, ({ routing }, o) => {
        const out = createExpertDrop(o).apply(routing, policyContext(routing.experts))
        const before = expertLoad(routing)
        const after = expertLoad(out.routing)
        const skipped = new Set(out.dropped.map((d) => d.expert))
        for (let e = 0; e < routing.experts; e++) expect(after[e]).toBe(skipped.has(e) ? 0 : before[e])
        expect(skipped.size).toBeLessThanOrEqual(expertsToDrop(o.drop, routing.experts))
        const survivors = before.filter((_, e) => after[e] > 0)
        for (const e of skipped) for (const l of survivors) expect(before[e]).toBeLessThanOrEqual(l)
        expectAccounting(routing, out, 'expert-drop')
        expect(out.dropped.every((d) => d.reason === 'expert-drop')).toBe(true)
      }),
    )
  })

  it('does not depend on batch order, and is deterministic', () => {
    fc.assert(
      fc.property(caseArb({ distinct: true }), optionsArb, fc.integer(), ({ routing }, o, pseed) => {
        const perm = permutation(routing.tokens, pseed)
        const a = createExpertDrop(o).apply(routing, policyContext(routing.experts))
        const b = createExpertDrop(o).apply(permuteTokens(routing, perm), policyContext(routing.experts))
        expect(pairsOf(b.routing).map((p) => `${perm[p.token]}:${p.expert}`).sort()).toEqual(pairKeys(a.routing))
        expect(createExpertDrop(o).apply(routing, policyContext(routing.experts))).toEqual(a)
      }),
    )
  })
})
