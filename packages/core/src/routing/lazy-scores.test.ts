import { describe, expect, it } from 'vitest'
import { softmaxTopK } from '../builtins/softmax-top-k.js'
import { deriveRouting, lazyScoresRouting, pairScores, scoreRow, scoresMaterialized, type ScoreRows } from './lazy-scores.js'

/** A routed batch and the same batch with lazily made scores (rows copied from the matrix, counting calls). */
function pair(tokens = 5, experts = 6, k = 2) {
  const scores = new Float32Array(tokens * experts)
  for (let i = 0; i < scores.length; i++) scores[i] = ((i * 7919) % 97) / 97 + 0.001 * (i % experts)
  const eager = softmaxTopK({ tokens, experts, scores }, k, true)
  let calls = 0
  const rows: ScoreRows = {
    experts,
    row(t, out, o) {
      calls++
      out.set(scores.subarray(t * experts, (t + 1) * experts), o)
    },
  }
  const top = new Float32Array(tokens * k)
  for (let i = 0; i < top.length; i++) top[i] = scores[Math.floor(i / k) * experts + eager.expertIds[i]]
  const { scores: _s, ...init } = eager
  const lazy = lazyScoresRouting(init, rows, top)
  return { eager, lazy, calls: () => calls }
}

describe('lazily made scores', () => {
  it('make the matrix on first read only, equal to the eager routing', () => {
    const { eager, lazy, calls } = pair()
    expect(scoresMaterialized(lazy)).toBe(false)
    expect(pairScores(lazy)).toEqual(pairScores(eager))
    expect(calls()).toBe(0)
    expect([...scoreRow(lazy, 3)]).toEqual([...eager.scores.subarray(18, 24)])
    expect(calls()).toBe(1)
    expect(lazy).toEqual(eager)
    expect(scoresMaterialized(lazy)).toBe(true)
    const n = calls()
    void lazy.scores
    expect(calls()).toBe(n)
  })

  it('stay lazy through deriveRouting, and pair scores follow the ids they belong to', () => {
    const { eager, lazy, calls } = pair()
    const ids = lazy.expertIds.slice()
    ids[1] = -1
    const derived = deriveRouting(lazy, { slots: lazy.slots, expertIds: ids, weights: lazy.weights })
    expect(scoresMaterialized(derived)).toBe(false)
    // new ids without pair scores: gathered from rows, not the stale ones of the base
    const p = pairScores(derived)
    expect(p[1]).toBe(0)
    expect(p[0]).toBe(eager.scores[eager.expertIds[0]])
    expect(scoresMaterialized(derived)).toBe(false)
    expect(derived.scores).toEqual(eager.scores)
    expect(scoresMaterialized(lazy)).toBe(true) // one matrix, shared
    expect(calls()).toBeGreaterThan(0)
  })

  it('a spread copy is a plain routing with the made scores', () => {
    const { eager, lazy } = pair()
    const copy = { ...lazy }
    expect(copy.scores).toEqual(eager.scores)
    expect(Object.getOwnPropertyDescriptor(copy, 'scores')?.get).toBeUndefined()
  })

  it('checks shapes like createRouting', () => {
    const { lazy } = pair()
    const { scores: _s, ...init } = lazy
    const rows: ScoreRows = { experts: 6, row() {} }
    expect(() => lazyScoresRouting({ ...init, expertIds: new Int32Array(3) }, rows, new Float32Array(10))).toThrow(/expertIds has 3 elements/)
    expect(() => lazyScoresRouting(init, { experts: 5, row() {} }, new Float32Array(10))).toThrow(/5 experts/)
    expect(() => lazyScoresRouting({ ...init, expertIds: Int32Array.from({ length: 10 }, () => 9) }, rows, new Float32Array(10))).toThrow(/outside 0..5/)
  })
})
