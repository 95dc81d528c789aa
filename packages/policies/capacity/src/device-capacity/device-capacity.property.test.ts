import { contiguousPlacement, mulberry32, pairsOf, type PolicyContext, type Routing } from '@moe-route/core'
import { scopeGroups } from '../shared/index.js'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { caseArb, expectAccounting, pairKeys, permutation, permuteTokens } from '../../test/arbitraries.js'
import { createDeviceCapacity, deviceBudgets, primaryDevices, type DeviceCapacityOptions } from './index.js'

const optionsArb: fc.Arbitrary<DeviceCapacityOptions> = fc.record({
  capacityFactor: fc.constantFrom(0.25, 0.5, 1, 1.5, 2),
  rounding: fc.constantFrom('ceil', 'floor', 'round'),
  renormalize: fc.constantFrom('none', 'model-native', 'kept'),
  applyToDecode: fc.boolean(),
  scope: fc.constantFrom('global', 'per-source-device'),
})
const ctxFor = (r: Routing, devices: number): PolicyContext => ({ placement: contiguousPlacement(r.experts, devices), batchId: 0, random: mulberry32(1) })

describe('device-capacity: properties', () => {
  it('each device keeps exactly min(load, budget) pairs per scope group, the best-scoring ones', () => {
    fc.assert(
      fc.property(caseArb(), optionsArb, ({ routing, devices }, o) => {
        const ctx = ctxFor(routing, devices)
        const out = createDeviceCapacity(o).apply(routing, ctx)
        const primary = primaryDevices(ctx.placement, routing.experts)
        const keptSet = new Set(pairKeys(out.routing))
        for (const g of scopeGroups(routing, o.scope)) {
          const budgets = deviceBudgets(primary, devices, o.capacityFactor, g.tokens.length, routing.topK, o.rounding)
          const inGroup = new Set(g.tokens)
          for (let d = 0; d < devices; d++) {
            const onD = pairsOf(routing).filter((p) => inGroup.has(p.token) && primary[p.expert] === d)
            const keptOnD = onD.filter((p) => keptSet.has(`${p.token}:${p.expert}`))
            expect(keptOnD.length).toBe(Math.min(onD.length, budgets[d]))
            const s = (p: { token: number; expert: number }) => routing.scores[p.token * routing.experts + p.expert]
            const worst = Math.min(...keptOnD.map(s))
            for (const p of onD) if (!keptSet.has(`${p.token}:${p.expert}`)) expect(s(p)).toBeLessThanOrEqual(worst)
          }
        }
      }),
    )
  })

  it('kept ⊆ input; every input pair kept or dropped with reason device-capacity', () => {
    fc.assert(
      fc.property(caseArb(), optionsArb, ({ routing, devices }, o) => {
        const out = createDeviceCapacity(o).apply(routing, ctxFor(routing, devices))
        expectAccounting(routing, out, 'device-capacity')
        expect(out.dropped.every((d) => d.reason === 'device-capacity')).toBe(true)
        const before = new Set(pairKeys(routing))
        for (const k of pairKeys(out.routing)) expect(before.has(k)).toBe(true)
      }),
    )
  })

  it('does not depend on batch order, and is deterministic', () => {
    fc.assert(
      fc.property(caseArb({ distinct: true }), optionsArb, fc.integer(), ({ routing, devices }, o, pseed) => {
        const perm = permutation(routing.tokens, pseed)
        const a = createDeviceCapacity(o).apply(routing, ctxFor(routing, devices))
        const b = createDeviceCapacity(o).apply(permuteTokens(routing, perm), ctxFor(routing, devices))
        expect(pairsOf(b.routing).map((p) => `${perm[p.token]}:${p.expert}`).sort()).toEqual(pairKeys(a.routing))
        expect(createDeviceCapacity(o).apply(routing, ctxFor(routing, devices))).toEqual(a)
      }),
    )
  })
})
