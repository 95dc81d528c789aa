import { contiguousPlacement, mulberry32 } from '@moe-route/core'
import { tokenDrop } from '../capacity-drop/index.js'
import fc from 'fast-check'
import { describe, it } from 'vitest'
import { caseArb } from '../../test/arbitraries.js'
import { expectSameOutcome } from '../../test/capacity-drop.reference.js'
import { expandedDropReference } from '../../test/expanded-drop.reference.js'
import { applyExpandedDrop, type ExpandedDropOptions } from './index.js'

const optionsArb: fc.Arbitrary<ExpandedDropOptions> = fc.record({
  capacityFactor: fc.constantFrom(0.25, 0.5, 1, 1.5, 2),
  rounding: fc.constantFrom('ceil', 'floor', 'round'),
  candidates: fc.constantFrom('local', 'global-topM', 'all'),
  overselectionRatio: fc.constantFrom(1, 1.5, 2, 3),
  localExperts: fc.constantFrom(null, [0, 1], [[1], [0, 2]]),
  maxExpertsPerToken: fc.constantFrom(null, 1, 2, 3),
  weights: fc.constantFrom('score', 'model-native'),
  applyToDecode: fc.boolean(),
  scope: fc.constantFrom('global', 'per-source-device'),
})

describe('expanded-drop: the typed host path makes exactly the reference decisions', () => {
  it('on router output (ties included) and on already-capped routings (empty slots)', () => {
    fc.assert(
      fc.property(caseArb({ maxTokens: 40, minDevices: 2 }), optionsArb, fc.double({ min: 0.3, max: 2, noNaN: true }), ({ routing, devices, seed }, o, gamma) => {
        const placement = contiguousPlacement(routing.experts, devices)
        const same = (r: typeof routing) => {
          let expected
          try {
            expected = expandedDropReference(r, o, placement)
          } catch (e) {
            // an invalid option set fails the same way
            let thrown: unknown
            try {
              applyExpandedDrop(r, o, placement)
            } catch (f) {
              thrown = f
            }
            if (String(thrown) !== String(e)) throw new Error(`reference threw ${String(e)}, typed path ${String(thrown)}`)
            return
          }
          expectSameOutcome(applyExpandedDrop(r, o, placement), expected)
        }
        same(routing)
        same(tokenDrop(routing, { capacityFactor: gamma, rounding: 'ceil', priority: 'random', renormalize: 'kept', applyToDecode: true, scope: 'global' }, mulberry32(seed)).routing)
      }),
      { numRuns: 400 },
    )
  })
})
