import { mulberry32 } from '@moe-route/core'
import { describe, expect, it } from 'vitest'
import { drawSystematic, inclusionProbabilities, pickFirst } from './sampling.js'

describe('inclusionProbabilities', () => {
  it('is k·w/Σw when no weight exceeds 1/k', () => {
    expect([...inclusionProbabilities([1, 1, 2], 2)]).toEqual([0.5, 0.5, 1])
  })
  it('caps at 1 and spreads the excess', () => {
    const pi = inclusionProbabilities([10, 1, 1, 1, 1], 2)
    expect(pi[0]).toBe(1)
    expect(pi.reduce((a, b) => a + b, 0)).toBeCloseTo(2, 12)
    for (let i = 1; i < 5; i++) expect(pi[i]).toBeCloseTo(0.25, 12)
  })
  it('gives zero weights a tiny floor when fewer than k are positive', () => {
    const pi = inclusionProbabilities([5, 0, 0], 2)
    expect(pi[0]).toBe(1)
    expect(pi[1] + pi[2]).toBeCloseTo(1, 9)
  })
})

describe('drawSystematic', () => {
  it('draws k distinct experts with inclusion frequencies π', () => {
    const w = [50, 10, 30, 5, 5, 20, 40, 40]
    const k = 3
    const pi = inclusionProbabilities(w, k)
    const r = mulberry32(11)
    const order = new Int32Array(8)
    const out = new Int32Array(k)
    const hits = new Array(8).fill(0)
    const N = 40_000
    for (let n = 0; n < N; n++) {
      drawSystematic(pi, k, r, order, out, 0)
      expect(new Set(out).size).toBe(k)
      for (const e of out) hits[e]++
    }
    for (let e = 0; e < 8; e++) {
      const sd = Math.sqrt((N * pi[e] * (1 - pi[e])) / 1) + 1
      expect(Math.abs(hits[e] - N * pi[e])).toBeLessThan(5 * sd)
    }
  })

  it('never draws zero-probability experts', () => {
    const pi = Float64Array.from([1, 0, 0.5, 0.5, 0])
    const out = new Int32Array(2)
    const r = mulberry32(4)
    for (let n = 0; n < 2000; n++) {
      drawSystematic(pi, 2, r, new Int32Array(5), out, 0)
      expect(out).toContain(0)
      expect([...out].some((e) => e === 1 || e === 4)).toBe(false)
    }
  })
})

describe('pickFirst', () => {
  it('moves the expert with all the bias to slot 0', () => {
    const out = Int32Array.from([4, 1, 2])
    pickFirst(Float64Array.from([0, 0, 1, 0, 0]), 3, mulberry32(1), out, 0)
    expect(out[0]).toBe(2)
    expect([...out].sort()).toEqual([1, 2, 4])
  })
})
