import { describe, expect, it } from 'vitest'
import { coactivationCounts, collaborationPlacement } from './collaboration.js'

/** Co-activation with two cliques: {0,3,5,6} and {1,2,4,7}. */
function cliques(): number[][] {
  const group = [0, 1, 1, 0, 1, 0, 0, 1]
  return Array.from({ length: 8 }, (_, i) => Array.from({ length: 8 }, (_, j) => (i === j ? 0 : group[i] === group[j] ? 100 + i + j : 1)))
}

describe('collaboration placement (Occult Algorithm 1)', () => {
  it('recovers cliques of co-activated experts', () => {
    const map = collaborationPlacement({ experts: 8, devices: 2, coactivation: cliques() })
    const dev = map.replicas.map((r) => r[0])
    expect(new Set([dev[0], dev[3], dev[5], dev[6]]).size).toBe(1)
    expect(new Set([dev[1], dev[2], dev[4], dev[7]]).size).toBe(1)
    expect(dev[0]).not.toBe(dev[1])
  })

  it('places each expert once, E/D per device, also with one expert per device', () => {
    for (const [E, D] of [[8, 8], [8, 4], [16, 4], [12, 5]]) {
      const M = Array.from({ length: E }, (_, i) => Array.from({ length: E }, (_, j) => (i === j ? 0 : ((i * 7 + j * 13) % 11) + 1)))
      const map = collaborationPlacement({ experts: E, devices: D, coactivation: M })
      const per = new Array(D).fill(0)
      map.replicas.forEach(([d]) => per[d]++)
      expect(Math.max(...per) - Math.min(...per)).toBeLessThanOrEqual(1)
      expect(per.reduce((a, b) => a + b)).toBe(E)
    }
  })

  it('rejects a matrix of the wrong shape', () => {
    expect(() => collaborationPlacement({ experts: 4, devices: 2, coactivation: [[0, 1], [1, 0]] })).toThrow(/4×4/)
  })
})

describe('coactivationCounts', () => {
  it('counts ordered pairs without the diagonal and skips empty slots', () => {
    const routing = { tokens: 2, slots: 3, expertIds: Int32Array.from([0, 2, -1, 2, 1, 0]) }
    const M = coactivationCounts(3, [routing])
    expect(M).toEqual([
      [0, 1, 2],
      [1, 0, 1],
      [2, 1, 0],
    ])
  })
})
