import { contiguousPlacement } from '@moe-route/core'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { phy2logFromPlacement, placementFromPhy2log } from './eplb.js'
import { rebalanceIncremental } from './incremental.js'

describe('rebalanceIncremental', () => {
  it('moves nothing with a zero budget and reports what that gives up', () => {
    const current = contiguousPlacement(8, 4)
    const load = [100, 90, 1, 1, 1, 1, 1, 1]
    const r = rebalanceIncremental(current, load, { maxMoves: 0 })
    expect(r.moved).toBe(0)
    expect(r.phy2log).toEqual(phy2logFromPlacement(current))
    expect(r.after).toBeCloseTo(r.before)
    expect(r.unconstrained).toBeLessThan(r.before)
    expect(r.balanceGivenUp).toBeCloseTo(r.after - r.unconstrained)
  })

  it('separates two hot experts with a two-weight swap', () => {
    const current = contiguousPlacement(8, 4)
    const r = rebalanceIncremental(current, [100, 90, 1, 1, 1, 1, 1, 1], { maxMoves: 2, bytesPerExpert: 10 })
    expect(r.moved).toBe(2)
    expect(r.bytesMoved).toBe(20)
    expect(r.placement.replicas[0][0]).not.toBe(r.placement.replicas[1][0])
    expect(r.after).toBeLessThan(r.before)
  })

  it('uses spare replica slots for hot experts (one copy per step)', () => {
    // 4 experts on 2 devices with 2 slots each → 4 slots... give 6 slots: experts 2, 3 doubled.
    const current = placementFromPhy2log([0, 2, 3, 1, 2, 3], 2, 4)
    const r = rebalanceIncremental(current, [60, 60, 1, 1], { maxMoves: 2 })
    expect(r.after).toBeLessThanOrEqual(r.before)
    const cnt = new Array(4).fill(0)
    for (const e of r.phy2log) cnt[e]++
    expect(Math.min(...cnt)).toBeGreaterThanOrEqual(1)
  })

  it('never exceeds the budget, never worsens balance, never drops an expert', () => {
    fc.assert(
      fc.property(
        fc.array(fc.integer({ min: 0, max: 1000 }), { minLength: 16, maxLength: 16 }),
        fc.integer({ min: 0, max: 6 }),
        fc.boolean(),
        (load, maxMoves, replicated) => {
          const current = replicated ? placementFromPhy2log([...Array.from({ length: 16 }, (_, e) => e), 0, 1, 2, 3, 4, 5, 6, 7], 4, 16) : contiguousPlacement(16, 4)
          const r = rebalanceIncremental(current, load, { maxMoves })
          expect(r.moved).toBeLessThanOrEqual(maxMoves)
          expect(r.after).toBeLessThanOrEqual(r.before + 1e-9)
          expect(r.balanceGivenUp).toBeGreaterThanOrEqual(0)
          expect(new Set(r.phy2log).size).toBe(16)
          expect(r.phy2log).toHaveLength(phy2logFromPlacement(current).length)
        },
      ),
      { numRuns: 60 },
    )
  })

  it('rejects a negative budget and loads of the wrong length', () => {
    expect(() => rebalanceIncremental(contiguousPlacement(4, 2), [1, 2, 3, 4], { maxMoves: -1 })).toThrow(/maxMoves/)
    expect(() => rebalanceIncremental(contiguousPlacement(4, 2), [1, 2, 3], { maxMoves: 1 })).toThrow(/3 experts/)
  })
})
