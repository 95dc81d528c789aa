import { routingFromPairs } from '@moe-route/core'
import { policyContext, routingFromRows } from '@moe-route/core/testing'
import { describe, expect, it } from 'vitest'
import { createTokenDrop, summarize } from '../index.js'

const ROWS = [
  [0.5, 0.3, 0.1, 0.1],
  [0.6, 0.1, 0.2, 0.1],
  [0.4, 0.35, 0.15, 0.1],
  [0.7, 0.05, 0.05, 0.2],
]

describe('summarize', () => {
  it('token drop at γ = 1: hand-computed fractions, gate mass and loads', () => {
    const r = routingFromRows(ROWS, { topK: 2 })
    const s = summarize(r, createTokenDrop({ capacityFactor: 1 }).apply(r, policyContext(4)))
    expect(s).toMatchObject({ pairsBefore: 8, pairsAfter: 6, dropped: 2, rerouted: 0, added: 0, tokensFullyDropped: 0 })
    expect(s.droppedFraction).toBe(0.25)
    expect(s.displacedFraction).toBe(0.25)
    // Σ weights 3.25; dropped (0,0) .5 and (2,0) .4.
    expect(s.gateMassKept).toBeCloseTo(2.35 / 3.25, 6)
    expect(s.gateMassAfter).toBeCloseTo(2.35 / 3.25, 6)
    expect(s.loadBefore).toEqual([4, 2, 1, 1])
    expect(s.loadAfter).toEqual([2, 2, 1, 1])
    expect(s.maxMeanBefore).toBe(2)
    expect(s.maxMeanAfter).toBeCloseTo(2 / 1.5, 12)
    expect([s.maxLoadBefore, s.maxLoadAfter]).toEqual([4, 2])
  })

  it('moved and added pairs count as displaced and in gate mass after, not in gate mass kept', () => {
    const r = routingFromRows(ROWS, { topK: 2 })
    // Move t0's e0 (.5) to e2 with weight .1; drop t3 entirely.
    const after = routingFromPairs(r, [
      { token: 0, expert: 1, weight: 0.3 },
      { token: 0, expert: 2, weight: 0.1 },
      { token: 1, expert: 0, weight: 0.6 },
      { token: 1, expert: 2, weight: 0.2 },
      { token: 2, expert: 0, weight: 0.4 },
      { token: 2, expert: 1, weight: 0.35 },
    ])
    const s = summarize(r, {
      routing: after,
      dropped: [
        { token: 3, expert: 0, weight: 0.7, reason: 'capacity', policy: 'x' },
        { token: 3, expert: 3, weight: 0.2, reason: 'capacity', policy: 'x' },
      ],
      rerouted: [{ token: 0, from: 0, to: 2, weight: 0.1, policy: 'x' }],
    })
    expect(s).toMatchObject({ pairsBefore: 8, pairsAfter: 6, dropped: 2, rerouted: 1, added: 1, tokensFullyDropped: 1 })
    expect(s.droppedFraction).toBe(2 / 8)
    expect(s.displacedFraction).toBe(3 / 8)
    expect(s.gateMassKept).toBeCloseTo(1.85 / 3.25, 6)
    expect(s.gateMassAfter).toBeCloseTo(1.95 / 3.25, 6)
  })
})
