import { mulberry32, topKIndices } from '@moe-route/core'
import { describe, expect, it } from 'vitest'
import { synthesizeScores, weightsFromScores } from './gate-scores.js'

function randomChoices(tokens: number, experts: number, k: number, seed: number): Int32Array {
  const r = mulberry32(seed)
  const out = new Int32Array(tokens * k)
  for (let t = 0; t < tokens; t++) {
    const pool = Array.from({ length: experts }, (_, e) => e)
    for (let j = 0; j < k; j++) out[t * k + j] = pool.splice(Math.floor(r() * pool.length), 1)[0]
  }
  return out
}

describe('synthesizeScores', () => {
  for (const [E, k] of [
    [8, 2],
    [64, 8],
    [4, 4],
  ]) {
    it(`makes the chosen experts the top-${k} of ${E} in slot order, rows summing to 1`, () => {
      const T = 2000
      const ids = randomChoices(T, E, k, 7)
      const scores = synthesizeScores(T, E, k, ids, mulberry32(1))
      const idx = new Int32Array(k)
      const problems: string[] = []
      for (let t = 0; t < T; t++) {
        topKIndices(scores, t * E, E, k, idx)
        if (idx.some((e, j) => e !== ids[t * k + j])) problems.push(`token ${t}: top-k ${idx} ≠ choice ${ids.subarray(t * k, t * k + k)}`)
        let sum = 0
        for (let e = 0; e < E; e++) sum += scores[t * E + e]
        if (Math.abs(sum - 1) > 1e-5) problems.push(`token ${t}: sum ${sum}`)
        // strict ordering: no float32 tie between the k-th score and the best unchosen one
        const kth = scores[t * E + idx[k - 1]]
        for (let e = 0; e < E; e++) if (!idx.includes(e) && !(scores[t * E + e] < kth)) problems.push(`token ${t}: expert ${e} ties slot ${k - 1}`)
      }
      expect(problems.slice(0, 5)).toEqual([])
    })
  }

  it('reproduces recorded weights as renormalised top-k scores', () => {
    const T = 500
    const ids = randomChoices(T, 8, 2, 3)
    const r = mulberry32(9)
    const w = new Float32Array(T * 2)
    for (let t = 0; t < T; t++) {
      const a = 0.5 + 0.5 * r()
      w[t * 2] = a
      w[t * 2 + 1] = 1 - a
    }
    w[0] = 1 // a degenerate (1, 0) pair still gives a valid, finite row
    w[1] = 0
    const scores = synthesizeScores(T, 8, 2, ids, mulberry32(2), w)
    const back = weightsFromScores(scores, 8, 2, ids, true)
    for (let i = 2; i < back.length; i++) expect(back[i]).toBeCloseTo(w[i], 5)
    expect(back[0]).toBeGreaterThan(0.999)
    expect(scores.every(Number.isFinite)).toBe(true)
  })

  it('is deterministic for a seed and varies with σ', () => {
    const ids = randomChoices(50, 8, 2, 1)
    const a = synthesizeScores(50, 8, 2, ids, mulberry32(5))
    expect(synthesizeScores(50, 8, 2, ids, mulberry32(5))).toEqual(a)
    const sharp = synthesizeScores(50, 8, 2, ids, mulberry32(5), null, { logitStd: 4 })
    const top = (s: Float32Array) => s.reduce((acc, _, i) => (i % 8 === ids[Math.floor(i / 8) * 2] ? acc + s[i] : acc), 0) / 50
    expect(top(sharp)).toBeGreaterThan(top(a) + 0.2)
  })

  it('weightsFromScores keeps raw probabilities when not normalising (OLMoE)', () => {
    const ids = Int32Array.from([2, 0])
    const scores = Float32Array.from([0.2, 0.1, 0.6, 0.1])
    expect([...weightsFromScores(scores, 4, 2, ids, false)].map((x) => +x.toFixed(4))).toEqual([0.6, 0.2])
    expect([...weightsFromScores(scores, 4, 2, ids, true)].map((x) => +x.toFixed(4))).toEqual([0.75, 0.25])
  })
})
