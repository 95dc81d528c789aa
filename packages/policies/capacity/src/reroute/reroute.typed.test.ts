import { mulberry32 } from '@moe-route/core'
import { tokenDrop } from '../capacity-drop/index.js'
import fc from 'fast-check'
import { describe, it } from 'vitest'
import { caseArb } from '../../test/arbitraries.js'
import { expectSameOutcome } from '../../test/capacity-drop.reference.js'
import { rerouteReference } from '../../test/reroute.reference.js'
import { applyReroute, type RerouteOptions } from './index.js'

const optionsArb: fc.Arbitrary<RerouteOptions> = fc.record({
  capacityFactor: fc.constantFrom(0.25, 0.5, 0.8, 1, 1.5, 2),
  rounding: fc.constantFrom('ceil', 'floor', 'round'),
  rounds: fc.constantFrom(1, 2, 3, 5),
  renormalize: fc.constantFrom('none', 'model-native', 'kept'),
  applyToDecode: fc.boolean(),
  scope: fc.constantFrom('global', 'per-source-device'),
})

describe('reroute: the typed host path makes exactly the reference decisions', () => {
  it('on router output (ties included) and on already-capped routings (empty slots)', () => {
    fc.assert(
      fc.property(caseArb({ maxTokens: 40 }), optionsArb, fc.double({ min: 0.3, max: 2, noNaN: true }), ({ routing, seed }, o, gamma) => {
        expectSameOutcome(applyReroute(routing, o), rerouteReference(routing, o))
        const holed = tokenDrop(routing, { capacityFactor: gamma, rounding: 'ceil', priority: 'random', renormalize: 'kept', applyToDecode: true, scope: 'global' }, mulberry32(seed)).routing
        expectSameOutcome(applyReroute(holed, o), rerouteReference(holed, o))
      }),
      { numRuns: 400 },
    )
  })
})
