import { contiguousPlacement, exactSizeDispatch, type Routing } from '@moe-route/core'
import { randomRouting } from '@moe-route/core/testing'
import { describe, expect, it } from 'vitest'
import { dynamicDispatch } from './dynamic-dispatch.js'
import { staticDispatch } from './static-dispatch.js'
import { dispatchStats } from './stats.js'

const ctx = (r: Routing, devices = 1, bytesPerToken = 2048) => ({ placement: contiguousPlacement(r.experts, devices), bytesPerToken })

describe('dispatchStats', () => {
  it("reproduces the paper's waste factors: 64× for MT (E 128, C 1) and 12.8× for LM (E 512, fraction 0.05)", () => {
    const mt = randomRouting(200, 128, 2, 3)
    const sMt = dispatchStats(staticDispatch(mt, ctx(mt), { capacityFactor: 1 }), { hidden: 2048, bytesPerElement: 2 })
    expect(sMt.capacity).toBe(200)
    expect(sMt.droppedPairs).toBe(0)
    expect(sMt.slotsComputed).toBe(128 * 200)
    expect(sMt.wasteFactor).toBe(64)
    const lm = randomRouting(1000, 512, 2, 4)
    const sLm = dispatchStats(staticDispatch(lm, ctx(lm), { capacityFraction: 0.05 }), { hidden: 1024, bytesPerElement: 2 })
    expect(sLm.capacity).toBe(50)
    expect(sLm.slotsComputed).toBe(512 * 50)
    expect(sLm.wasteFactor).toBeCloseTo(12.8, 12)
    const dyn = dispatchStats(dynamicDispatch(lm, ctx(lm)), { hidden: 1024, bytesPerElement: 2 })
    expect(dyn.wasteFactor).toBe(1)
    expect(dyn.paddingSlots).toBe(0)
  })

  it('counts the static dispatch mask (S·E·cap) and the activation buffers', () => {
    const r = randomRouting(64, 16, 2, 5)
    const plan = staticDispatch(r, ctx(r), { capacityFraction: 0.25 }) // cap 16
    const s = dispatchStats(plan, { hidden: 32, bytesPerElement: 4, intermediate: 48, kernels: { experts: 1.5, combine: 0.25 } })
    const slots = 16 * 16
    expect(s.slotsComputed).toBe(slots)
    expect(s.memory.dispatchBufferBytes).toBe(slots * 32 * 4)
    expect(s.memory.expertOutputBytes).toBe(slots * 32 * 4)
    expect(s.memory.intermediateBytes).toBe(slots * 48 * 4)
    expect(s.memory.dispatchMaskBytes).toBe(64 * 16 * 16 * 5)
    expect(s.memory.indexBytes).toBe(slots * 8 + 17 * 4 + 16 * 4)
    expect(s.memory.totalBytes).toBe(2 * slots * 128 + slots * 192 + 64 * 16 * 16 * 5 + s.memory.indexBytes)
    expect(s.flops).toBe(slots * 6 * 32 * 48)
    expect(s.kernelMs).toBe(1.75)
    expect(s.pairsKept + s.droppedPairs).toBe(128)
    expect(s.paddingSlots).toBe(slots - s.pairsKept)
  })

  it('dynamic gating needs only index arrays: no mask memory', () => {
    const r = randomRouting(64, 16, 2, 5)
    const s = dispatchStats(dynamicDispatch(r, ctx(r)), { hidden: 32, bytesPerElement: 4 })
    expect(s.memory.dispatchMaskBytes).toBe(0)
    expect(s.memory.intermediateBytes).toBe(0)
    expect(s.memory.indexBytes).toBe(128 * 8 + 17 * 4 + 16 * 4)
    expect(s.flops).toBeUndefined()
    expect(s.kernelMs).toBeUndefined()
  })

  it('counts tokens that lost one pair and tokens that lost all', () => {
    const r = randomRouting(40, 4, 2, 9)
    const plan = staticDispatch(r, ctx(r), { capacityFactor: 0.1 }) // cap 4 of 80 pairs
    const s = dispatchStats(plan, { hidden: 8, bytesPerElement: 2 })
    const tokensWithRow = new Set([...plan.rowToken].filter((t) => t >= 0))
    const tokensDropped = new Set(plan.dropped.map((d) => d.token))
    expect(s.droppedPairs).toBe(80 - 16)
    expect(s.tokensWithDrop).toBe(tokensDropped.size)
    expect(s.tokensFullyDropped).toBe([...tokensDropped].filter((t) => !tokensWithRow.has(t)).length)
    expect(s.tokensFullyDropped).toBeGreaterThan(0)
  })

  it("reads core's own plans too, and the cross-device bytes of both exchanges", () => {
    const r0 = randomRouting(32, 8, 2, 11)
    const r = { ...r0, sourceDevice: Int32Array.from({ length: 32 }, (_, t) => t % 2) }
    const core = dispatchStats(exactSizeDispatch(r, ctx(r, 2, 10)), { hidden: 5, bytesPerElement: 2 })
    expect(core.wasteFactor).toBe(1)
    expect(core.collectives).toBe(1)
    const dyn = dispatchStats(dynamicDispatch(r, ctx(r, 2, 10)), { hidden: 5, bytesPerElement: 2 })
    expect(dyn.collectives).toBe(2)
    expect(dyn.sizeBytesCrossDevice).toBe(2 * 4 * 8)
    expect(dyn.bytesCrossDevice).toBeGreaterThanOrEqual(core.bytesCrossDevice)
    const st = dispatchStats(staticDispatch(r, ctx(r, 2, 10)), { hidden: 5, bytesPerElement: 2 })
    // cap = 16 per device: each device sends 4 remote experts × 16 slots × 10 bytes
    expect(st.bytesCrossDevice).toBe(2 * 4 * 16 * 10)
  })

  it('rejects a bad element size', () => {
    const r = randomRouting(4, 4, 1, 1)
    expect(() => dispatchStats(dynamicDispatch(r, ctx(r)), { hidden: 8, bytesPerElement: 0 })).toThrow(/bytesPerElement/)
  })
})
