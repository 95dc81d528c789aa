import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { balancedPacking, placementFromPhy2log, rebalanceExperts } from './eplb.js'

describe('rebalanceExperts (DeepSeek EPLB)', () => {
  it('reproduces the EPLB README example (hierarchical: 4 groups, 2 nodes, 8 GPUs, 16 slots)', () => {
    const weight = [
      [90, 132, 40, 61, 104, 165, 39, 4, 73, 56, 183, 86],
      [20, 107, 104, 64, 19, 197, 187, 157, 172, 86, 16, 27],
    ]
    const r = rebalanceExperts(weight, { numReplicas: 16, numGroups: 4, numNodes: 2, numGpus: 8 })
    expect(r.phy2log).toEqual([
      [5, 6, 5, 7, 8, 4, 3, 4, 10, 9, 10, 2, 0, 1, 11, 1],
      [7, 10, 6, 8, 6, 11, 8, 9, 2, 4, 5, 1, 5, 0, 3, 1],
    ])
    expect(r.logcnt).toEqual([
      [1, 2, 1, 1, 2, 2, 1, 1, 1, 1, 2, 1],
      [1, 2, 1, 1, 1, 2, 2, 1, 2, 1, 1, 1],
    ])
    // log2phy is the inverse of phy2log, −1 padded to the largest replica count.
    expect(r.log2phy[0][1]).toEqual([15, 13])
    expect(r.log2phy[0][0]).toEqual([12, -1])
    r.log2phy.forEach((layer, l) => layer.forEach((slots, e) => slots.filter((p) => p >= 0).forEach((p) => expect(r.phy2log[l][p]).toBe(e))))
  })

  it('gives every expert one slot when loads are equal and R = E', () => {
    const r = rebalanceExperts([new Array(16).fill(7)], { numReplicas: 16, numGroups: 4, numNodes: 2, numGpus: 4 })
    expect(r.logcnt[0]).toEqual(new Array(16).fill(1))
    expect([...r.phy2log[0]].sort((a, b) => a - b)).toEqual(Array.from({ length: 16 }, (_, i) => i))
  })

  it('keeps its invariants on random loads, hierarchical and global (groups not divisible by nodes)', () => {
    fc.assert(
      fc.property(
        fc.record({
          gpus: fc.constantFrom(2, 4, 8),
          perGpu: fc.integer({ min: 1, max: 4 }),
          extra: fc.integer({ min: 0, max: 3 }),
          groups: fc.constantFrom(1, 2, 3, 4),
          nodes: fc.constantFrom(1, 2),
          seed: fc.array(fc.integer({ min: 0, max: 1000 }), { minLength: 48, maxLength: 48 }),
        }),
        ({ gpus, perGpu, extra, groups, nodes, seed }) => {
          const E = 12 // divisible by 1, 2, 3, 4 groups
          const R = Math.max(gpus * perGpu, Math.ceil(E / gpus) * gpus) + extra * gpus
          const weight = [seed.slice(0, E), seed.slice(E, 2 * E)]
          const r = rebalanceExperts(weight, { numReplicas: R, numGroups: groups, numNodes: nodes, numGpus: gpus })
          for (let l = 0; l < 2; l++) {
            expect(r.logcnt[l].reduce((a, b) => a + b, 0)).toBe(R)
            expect(Math.min(...r.logcnt[l])).toBeGreaterThanOrEqual(1)
            expect(r.phy2log[l]).toHaveLength(R)
            const counts = new Array(E).fill(0)
            for (const e of r.phy2log[l]) counts[e]++
            expect(counts).toEqual(r.logcnt[l])
            const map = placementFromPhy2log(r.phy2log[l], gpus, E)
            const perDevice = new Array(gpus).fill(0)
            map.replicas.forEach((reps) => reps.forEach((d) => perDevice[d]++))
            expect(perDevice).toEqual(new Array(gpus).fill(R / gpus))
          }
        },
      ),
      { numRuns: 150 },
    )
  })

  it('gives the hottest expert the extra replicas (global policy)', () => {
    const r = rebalanceExperts([[1000, 10, 10, 10, 10, 10, 10, 10]], { numReplicas: 12, numGroups: 1, numNodes: 1, numGpus: 4 })
    expect(r.logcnt[0][0]).toBe(5)
  })

  it('rejects slots that do not divide over GPUs, and fewer slots than experts', () => {
    expect(() => rebalanceExperts([[1, 2, 3, 4]], { numReplicas: 6, numGroups: 1, numNodes: 1, numGpus: 4 })).toThrow(/multiple of numGpus/)
    expect(() => rebalanceExperts([[1, 2, 3, 4]], { numReplicas: 2, numGroups: 1, numNodes: 1, numGpus: 2 })).toThrow(/fewer than/)
    expect(() => rebalanceExperts([[1, Number.NaN]], { numReplicas: 2, numGroups: 1, numNodes: 1, numGpus: 2 })).toThrow(/finite/)
  })
})

describe('balancedPacking', () => {
  it('puts the heaviest item first onto the lightest pack with room', () => {
    const { packIndex, rankInPack } = balancedPacking([10, 9, 1, 2], 2)
    expect(packIndex).toEqual([0, 1, 0, 1])
    expect(rankInPack).toEqual([0, 0, 1, 1])
  })
})
