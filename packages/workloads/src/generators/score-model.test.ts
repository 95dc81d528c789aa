import { mulberry32, pairScores, scoreRow, scoresMaterialized, softmaxTopK, type Routing } from '@moe-route/core'
import { describe, expect, it } from 'vitest'
import { synthesizeScores } from './gate-scores.js'
import { uniformWorkload, uniformSamplerForTests as samplerOf } from './generators.js'
import { createWorkload } from './workload.js'
import { normalCdf, normalQuantile } from './normal.js'
import { workloadFromSpec } from './spec.js'

const plain = (r: Routing) => ({ tokens: r.tokens, experts: r.experts, topK: r.topK, slots: r.slots, expertIds: [...r.expertIds], weights: [...r.weights], normalizeTopK: r.normalizeTopK })

describe('normal helpers', () => {
  it('Φ⁻¹ inverts Φ from the far tail to the centre', () => {
    for (const p of [1e-12, 1e-6, 0.001, 0.02, 0.3, 0.5, 0.8, 0.99, 1 - 1e-7]) expect(normalCdf(normalQuantile(p))).toBeCloseTo(p, p < 0.01 ? 9 : 6)
    expect(normalQuantile(0.975)).toBeCloseTo(1.959964, 5)
  })
})

describe('workload routings (closed-form scores)', () => {
  for (const [spec, E, k] of [
    ['uniform:E=256:k=8', 256, 8],
    ['uniform:E=8:k=2', 8, 2],
    ['uniform:E=4:k=4', 4, 4],
    ['olmoe:arxiv:layer0', 64, 8],
    ['mixtral:c4:layer7', 8, 2],
  ] as const) {
    for (const normalize of [true, false]) {
      it(`${spec}: equal softmax-top-k of the made scores (normalizeTopK ${normalize}), without making them first`, () => {
        const w = workloadFromSpec(spec)
        const batches = [...w.routings({ tokensPerBatch: 300, batches: 3, seed: 4, normalizeTopK: normalize })]
        for (const r of batches) {
          expect(scoresMaterialized(r)).toBe(false)
          const top = pairScores(r)
          expect(scoresMaterialized(r)).toBe(false)
          const row = scoreRow(r, 17)
          expect(scoresMaterialized(r)).toBe(false)
          const routed = softmaxTopK({ tokens: r.tokens, experts: E, scores: r.scores }, k, normalize)
          expect(plain(r)).toEqual(plain(routed))
          expect([...row]).toEqual([...r.scores.subarray(17 * E, 18 * E)])
          for (let i = 0; i < top.length; i++) expect(top[i]).toBe(r.scores[Math.floor(i / k) * E + r.expertIds[i]])
          for (let t = 0; t < r.tokens; t += 29) {
            let s = 0
            for (let e = 0; e < E; e++) s += r.scores[t * E + e]
            expect(s).toBeCloseTo(1, 5)
          }
        }
      })
    }
  }

  it('makes the same tokens from any start and any batch size (what worker threads rely on)', () => {
    const w = workloadFromSpec('mixtral:github:layer15')
    const whole = [...w.routings({ tokensPerBatch: 1000, tokens: 1000, seed: 9 })][0]
    const [tail] = [...w.routings({ tokensPerBatch: 400, tokens: 400, seed: 9, startToken: 600 })]
    expect([...tail.expertIds]).toEqual([...whole.expertIds.subarray(600 * 2)])
    expect([...tail.weights]).toEqual([...whole.weights.subarray(600 * 2)])
    expect([...tail.scores]).toEqual([...whole.scores.subarray(600 * 8)])
    const u = uniformWorkload(64, 6)
    const a = [...u.routings({ tokensPerBatch: 64, tokens: 256, seed: 2 })].flatMap((r) => [...r.scores])
    const b = [...u.routings({ tokensPerBatch: 100, tokens: 256, seed: 2 })].flatMap((r) => [...r.scores])
    expect(b).toEqual(a)
  })

  it('draws the top-k scores with the distribution of the full Gaussian-logit model', () => {
    // the same ids through synthesizeScores (E logits drawn per token) give the reference distribution
    const E = 256
    const k = 8
    const [r] = [...uniformWorkload(E, k).routings({ tokensPerBatch: 4000, batches: 1, seed: 1 })]
    const full = synthesizeScores(r.tokens, E, k, r.expertIds, mulberry32(3))
    const top = pairScores(r)
    for (const j of [0, 3, 7]) {
      let ours = 0
      let ref = 0
      for (let t = 0; t < r.tokens; t++) {
        ours += top[t * k + j]
        ref += full[t * E + r.expertIds[t * k + j]]
      }
      expect(Math.abs(ours / ref - 1)).toBeLessThan(0.05)
    }
  })

  it("a sampler's batch fill draws what next() draws, and samplers without seek are skipped through", () => {
    for (const [E, k] of [
      [256, 8],
      [6, 4],
    ]) {
      const u = uniformWorkload(E, k)
      const inner = (u as unknown as { choices: typeof u.choices }).choices
      const viaFill = [...inner({ tokensPerBatch: 50, batches: 2, seed: 7, startToken: 30 })].flatMap((c) => [...c.expertIds])
      // the same sampler through next() only, without seek (drawn and discarded up to token 30)
      const def = createWorkload({
        spec: 'x',
        description: 'x',
        experts: E,
        topK: k,
        normalizeTopK: true,
        targetLoad: [],
        sampler: (seed) => {
          const s = samplerOf(u, seed)
          return { next: (r, out, o) => s.next(r, out, o) }
        },
      })
      const viaNext = [...def.choices({ tokensPerBatch: 50, batches: 2, seed: 7, startToken: 30 })].flatMap((c) => [...c.expertIds])
      expect(viaNext).toEqual(viaFill)
    }
  })

  it('uniform choices are k distinct experts with uniform load', () => {
    const counts = new Array(32).fill(0)
    for (const c of uniformWorkload(32, 8).choices({ tokensPerBatch: 5000, batches: 4, seed: 3 })) {
      for (let t = 0; t < c.tokens; t++) {
        const s = c.expertIds.subarray(t * 8, t * 8 + 8)
        expect(new Set(s).size).toBe(8)
        for (const e of s) counts[e]++
      }
    }
    const mean = (20000 * 8) / 32
    for (const n of counts) expect(Math.abs(n - mean)).toBeLessThan(5 * Math.sqrt(mean))
  })
})
