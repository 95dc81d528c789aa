import { contiguousPlacement, mulberry32 } from '@moe-route/core'
import { tokenDrop } from '../capacity-drop/index.js'
import fc from 'fast-check'
import { describe, it } from 'vitest'
import { caseArb } from '../../test/arbitraries.js'
import { deviceCapacityReference, expectSameOutcome } from '../../test/capacity-drop.reference.js'
import { applyDeviceCapacity, deviceBudgets, primaryDevices, type DeviceCapacityOptions } from './index.js'

const optionsArb: fc.Arbitrary<DeviceCapacityOptions> = fc.record({
  capacityFactor: fc.constantFrom(0.25, 0.5, 0.8, 1, 1.5, 2),
  rounding: fc.constantFrom('ceil', 'floor', 'round'),
  renormalize: fc.constantFrom('none', 'model-native', 'kept'),
  applyToDecode: fc.boolean(),
  scope: fc.constantFrom('global', 'per-source-device'),
})

describe('device-capacity: the typed host path makes exactly the reference decisions', () => {
  it('on router output (ties included) and on already-capped routings (empty slots)', () => {
    fc.assert(
      fc.property(caseArb({ maxTokens: 40 }), optionsArb, fc.double({ min: 0.3, max: 2, noNaN: true }), ({ routing, devices, seed }, o, gamma) => {
        const placement = contiguousPlacement(routing.experts, devices)
        const primary = primaryDevices(placement, routing.experts)
        const ref = (r: typeof routing) =>
          deviceCapacityReference(r, o, placement.devices, primary, (T) => deviceBudgets(primary, placement.devices, o.capacityFactor, T, r.topK, o.rounding))
        expectSameOutcome(applyDeviceCapacity(routing, o, placement), ref(routing))
        const holed = tokenDrop(routing, { capacityFactor: gamma, rounding: 'ceil', priority: 'random', renormalize: 'kept', applyToDecode: true, scope: 'global' }, mulberry32(seed)).routing
        expectSameOutcome(applyDeviceCapacity(holed, o, placement), ref(holed))
      }),
      { numRuns: 300 },
    )
  })
})
