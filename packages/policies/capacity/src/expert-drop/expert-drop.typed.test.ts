import { mulberry32 } from '@moe-route/core'
import { tokenDrop } from '../capacity-drop/index.js'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { caseArb } from '../../test/arbitraries.js'
import { expectSameOutcome, expertDropReference, lowestLoadExpertsReference } from '../../test/capacity-drop.reference.js'
import { applyExpertDrop, expertsToDrop, lowestLoadExperts, type ExpertDropOptions } from './index.js'

const optionsArb: fc.Arbitrary<ExpertDropOptions> = fc.record({
  drop: fc.constantFrom(0.1, 0.25, 0.5, 1, 2, 3),
  renormalize: fc.constantFrom('none', 'model-native', 'kept'),
  applyToDecode: fc.boolean(),
})

describe('expert-drop: the typed host path makes exactly the reference decisions', () => {
  it('on router output (ties included) and on already-capped routings (empty slots)', () => {
    fc.assert(
      fc.property(caseArb({ maxTokens: 40 }), optionsArb, fc.double({ min: 0.3, max: 2, noNaN: true }), ({ routing, seed }, o, gamma) => {
        const holed = tokenDrop(routing, { capacityFactor: gamma, rounding: 'ceil', priority: 'random', renormalize: 'none', applyToDecode: true, scope: 'global' }, mulberry32(seed)).routing
        for (const r of [routing, holed]) {
          const n = expertsToDrop(o.drop, r.experts)
          expect(lowestLoadExperts(r, n)).toEqual(lowestLoadExpertsReference(r, n))
          expectSameOutcome(applyExpertDrop(r, o), expertDropReference(r, o, lowestLoadExpertsReference(r, n)))
        }
      }),
      { numRuns: 300 },
    )
  })
})
