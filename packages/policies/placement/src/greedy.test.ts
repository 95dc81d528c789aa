import { contiguousPlacement } from '@moe-route/core'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { antiCorrelationPlacement, greedyPlacement } from './greedy.js'
import { evaluateLoad } from './history.js'

const historyArb = (E: number) => fc.array(fc.array(fc.integer({ min: 0, max: 500 }), { minLength: E, maxLength: E }), { minLength: 2, maxLength: 8 })

describe('greedy placement', () => {
  it('places every expert once with equal experts per device', () => {
    fc.assert(
      fc.property(fc.constantFrom([8, 2], [8, 8], [16, 4], [12, 8], [64, 8]), fc.nat(), ([E, D], seed) => {
        const history = Array.from({ length: 4 }, (_, b) => Array.from({ length: E }, (_, e) => ((seed + 31 * e + 7 * b) % 97) + 1))
        for (const map of [greedyPlacement({ experts: E, devices: D, history }), antiCorrelationPlacement({ experts: E, devices: D, history })]) {
          expect(map.replicas.every((r) => r.length === 1)).toBe(true)
          const per = new Array(D).fill(0)
          map.replicas.forEach(([d]) => per[d]++)
          const c = contiguousPlacement(E, D)
          const want = new Array(D).fill(0)
          c.replicas.forEach(([d]) => want[d]++)
          expect(per).toEqual(want)
        }
      }),
    )
  })

  it('never does worse than contiguous on the mean load it was built from', () => {
    fc.assert(
      fc.property(historyArb(16), (history) => {
        const mean = [history.reduce((acc, row) => acc.map((v, e) => v + row[e]), new Array(16).fill(0))]
        const g = evaluateLoad(greedyPlacement({ experts: 16, devices: 4, history }), mean)
        // Greedy (LPT) is within 4/3 of optimal; contiguous is arbitrary, so compare with the
        // LPT bound instead of contiguous: heaviest device ≤ mean + heaviest expert share.
        const total = mean[0].reduce((a, b) => a + b, 0)
        if (total === 0) return
        const heaviest = Math.max(...mean[0]) / total
        expect(g.maxLoad).toBeLessThanOrEqual(0.25 + heaviest + 1e-9)
      }),
    )
  })

  it('separates hot experts that contiguous puts together', () => {
    const history = [[100, 90, 1, 1, 1, 1, 1, 1]]
    const g = greedyPlacement({ experts: 8, devices: 2, history })
    expect(g.replicas[0][0]).not.toBe(g.replicas[1][0])
    expect(evaluateLoad(g, history).maxLoad).toBeLessThan(evaluateLoad(contiguousPlacement(8, 2), history).maxLoad)
  })
})

describe('anti-correlation placement', () => {
  it('puts experts that rise and fall together on different devices', () => {
    // Experts 0 and 1 are hot in the same batches, 2 and 3 in the others; equal means.
    const history = Array.from({ length: 10 }, (_, b) => (b % 2 === 0 ? [50, 50, 10, 10] : [10, 10, 50, 50]))
    const a = antiCorrelationPlacement({ experts: 4, devices: 2, history })
    expect(a.replicas[0][0]).not.toBe(a.replicas[1][0])
    expect(a.replicas[2][0]).not.toBe(a.replicas[3][0])
    const anti = evaluateLoad(a, history)
    const contiguous = evaluateLoad(contiguousPlacement(4, 2), history)
    expect(anti.maxLoad).toBeCloseTo(0.5)
    expect(contiguous.maxLoad).toBeCloseTo(100 / 120)
  })

  it('with rho 0 is plain greedy', () => {
    const history = [[5, 3, 9, 1, 7, 2], [4, 4, 8, 2, 6, 3]]
    expect(antiCorrelationPlacement({ experts: 6, devices: 3, history, rho: 0 }).replicas).toEqual(greedyPlacement({ experts: 6, devices: 3, history }).replicas)
  })

  it('rejects a history of the wrong width', () => {
    expect(() => greedyPlacement({ experts: 4, devices: 2, history: [[1, 2, 3]] })).toThrow(/3 experts/)
  })
})
