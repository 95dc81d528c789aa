import { describe, expect, it } from 'vitest'
import { softmaxTopK } from './softmax-top-k.js'
import { isMoeError } from '../errors.js'

describe('softmax-top-k', () => {
  it('breaks ties by higher score then lower expert index', () => {
    const scores = new Float32Array([0.2, 0.3, 0.3, 0.2, /* t1 */ 0.25, 0.25, 0.25, 0.25])
    const r = softmaxTopK({ tokens: 2, experts: 4, scores }, 2, false)
    expect(Array.from(r.expertIds)).toEqual([1, 2, 0, 1])
  })

  it('renormalises over k (Mixtral) or keeps raw probabilities (OLMoE)', () => {
    const scores = new Float32Array([0.5, 0.3, 0.2])
    const mix = softmaxTopK({ tokens: 1, experts: 3, scores }, 2, true)
    const raw = softmaxTopK({ tokens: 1, experts: 3, scores }, 2, false)
    expect(mix.weights[0]).toBeCloseTo(0.625, 6)
    expect(mix.weights[1]).toBeCloseTo(0.375, 6)
    expect(Array.from(raw.weights)).toEqual([0.5, Math.fround(0.3)])
  })

  it('computes softmax from logits', () => {
    const r = softmaxTopK({ tokens: 1, experts: 2, logits: new Float32Array([0, Math.log(3)]) }, 1, false)
    expect(r.expertIds[0]).toBe(1)
    expect(r.weights[0]).toBeCloseTo(0.75, 6)
  })

  it.each([
    ['NaN logits', { tokens: 1, experts: 2, logits: new Float32Array([0, NaN]) }, 1, 'MOE_ROUTE_ERR_INPUT_NOT_FINITE'],
    ['wrong shape', { tokens: 2, experts: 2, logits: new Float32Array(3) }, 1, 'MOE_ROUTE_ERR_SHAPE_MISMATCH'],
    ['k > E', { tokens: 1, experts: 2, logits: new Float32Array(2) }, 3, 'MOE_ROUTE_ERR_TOPK_EXCEEDS_EXPERTS'],
    ['no input', { tokens: 1, experts: 2 }, 1, 'MOE_ROUTE_ERR_INPUT_INVALID'],
  ] as const)('%s gets a stable code', (_n, input, k, code) => {
    try {
      softmaxTopK(input, k, false)
      expect.unreachable()
    } catch (e) {
      expect(isMoeError(e) && e.code).toBe(code)
    }
  })
})
