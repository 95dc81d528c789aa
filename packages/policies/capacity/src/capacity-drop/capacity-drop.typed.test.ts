import { mulberry32 } from '@moe-route/core'
import fc from 'fast-check'
import { describe, it } from 'vitest'
import { caseArb } from '../../test/arbitraries.js'
import { expectSameOutcome, tokenDropReference } from '../../test/capacity-drop.reference.js'
import { tokenDrop, type CapacityDropOptions } from './index.js'

const optionsArb: fc.Arbitrary<CapacityDropOptions> = fc.record({
  capacityFactor: fc.constantFrom(0.25, 0.5, 0.8, 1, 1.25, 1.5, 3),
  rounding: fc.constantFrom('ceil', 'floor', 'round'),
  priority: fc.constantFrom('score', 'first', 'last', 'random'),
  renormalize: fc.constantFrom('none', 'model-native', 'kept'),
  applyToDecode: fc.boolean(),
  scope: fc.constantFrom('global', 'per-source-device'),
})

describe('capacity-drop: the typed host path makes exactly the reference decisions', () => {
  it('on router output (ties included) and on already-capped routings (empty slots)', () => {
    fc.assert(
      fc.property(caseArb({ maxTokens: 40 }), optionsArb, optionsArb, ({ routing, seed }, first, o) => {
        expectSameOutcome(tokenDrop(routing, o, mulberry32(seed)), tokenDropReference(routing, o, mulberry32(seed)))
        const holed = tokenDropReference(routing, first, mulberry32(seed + 1)).routing
        expectSameOutcome(tokenDrop(holed, o, mulberry32(seed)), tokenDropReference(holed, o, mulberry32(seed)))
      }),
      { numRuns: 300 },
    )
  })
})
