/**
 * The c2r router next to ports of the official C2R routing code, in range and out of range
 * of Top-T.
 *
 * OFFICIAL-CODE PORTS (test-only, not part of the package): `officialQwen` follows
 * UNITES-Lab/c2r-moe `Qwen-MoE/model_topt30/modeling_qwen2_moe.py`
 * (`Qwen2MoeSparseMoeBlock.forward`, the `@revise` block), and `officialLlama` follows
 * `LLaMA-MoE/modeling_llama_moe_hf.py` (`TopKBalancedNoisyGate.forward`, inference: no
 * noise, softmax on), both at commit 1a336df. `torch.topk` is modelled by picking the largest
 * values; its order for `sorted=False` is unspecified, so the Qwen port is compared as a set,
 * and inputs have no tied scores. A `topk(k)` with k larger than the row raises, as torch does.
 */
import { isMoeError, mulberry32, softmaxRows } from '@moe-route/core'
import { describe, expect, it } from 'vitest'
import { c2rRoute } from './c2r.router.js'

interface Selected {
  readonly ids: number[]
  readonly weights: number[]
}

const argmax = (row: ArrayLike<number>) => {
  let best = 0
  for (let e = 1; e < row.length; e++) if (row[e] > row[best]) best = e
  return best
}

/** torch.topk(values, k): indices of the k largest, descending; raises when k > values.length. */
function topk(values: readonly number[], k: number): number[] {
  if (k > values.length) throw new RangeError(`selected index k out of range (k ${k}, size ${values.length})`)
  return values.map((_, i) => i).sort((a, b) => values[b] - values[a]).slice(0, k)
}

/** Qwen2MoeSparseMoeBlock.forward, @revise block, for one token: `p` = softmax over all experts. */
function officialQwen(p: ArrayLike<number>, lists: readonly (readonly number[])[], topK: number, topT: number, normTopkProb: boolean): Selected {
  if (!(topT >= topK - 1)) throw new Error('AssertionError: assert self.top_t >= self.top_k - 1')
  const top1 = argmax(p)
  const collaborative = lists[top1].slice(0, topT) // collaborative_indices[:, :self.top_t]
  const scores = collaborative.map((c) => p[c])
  const picked = topk(scores, topK - 1) // topk(top_k - 1, sorted=False)
  const ids = [top1, ...picked.map((i) => collaborative[i])]
  let weights = [p[top1], ...picked.map((i) => scores[i])]
  if (normTopkProb) {
    const sum = weights.reduce((a, b) => a + b, 0)
    weights = weights.map((w) => w / sum)
  }
  return { ids, weights }
}

/** TopKBalancedNoisyGate.forward, @revise block, for one token: `logits` of the gate. */
function officialLlama(logits: readonly number[], lists: readonly (readonly number[])[], numSelects: number, topT: number): Selected {
  const top1 = argmax(logits)
  let ids: number[]
  let topLogits: number[]
  if (topT > 1) {
    const collaborative = lists[top1].slice(0, topT)
    const scores = collaborative.map((c) => logits[c])
    const picked = topk(scores, numSelects) // topk(self.num_selects): sorted, descending
    ids = [top1, ...picked.map((i) => collaborative[i])].slice(0, numSelects)
    topLogits = [logits[top1], ...picked.map((i) => scores[i])].slice(0, numSelects)
  } else {
    ids = [top1, ...lists[top1].slice(0, 2)].slice(0, numSelects) // collaborative_indices[:, :2]
    topLogits = ids.map((e) => logits[e])
  }
  const m = Math.max(...topLogits)
  const ex = topLogits.map((l) => Math.exp(l - m))
  const sum = ex.reduce((a, b) => a + b, 0)
  return { ids, weights: ex.map((x) => x / sum) }
}

/** Official lists: np.argsort(-M) of a tie-free matrix with diagonal −1 (self last, E entries). */
function officialLists(E: number, seed: number): number[][] {
  const r = mulberry32(seed)
  const perm = Array.from({ length: E * E }, (_, i) => i)
  for (let i = perm.length - 1; i > 0; i--) {
    const j = Math.floor(r() * (i + 1))
    ;[perm[i], perm[j]] = [perm[j], perm[i]]
  }
  return Array.from({ length: E }, (_, i) => {
    const row = Array.from({ length: E }, (_, j) => (i === j ? -1 : perm[i * E + j]))
    return row.map((_, j) => j).sort((a, b) => row[b] - row[a])
  })
}

function batch(tokens: number, E: number, seed: number) {
  const r = mulberry32(seed)
  const logits = Float32Array.from({ length: tokens * E }, () => r() * 8 - 4)
  return { logits, scores: softmaxRows(logits, tokens, E) }
}

const row = (a: Float32Array, t: number, E: number) => Array.from(a.subarray(t * E, (t + 1) * E))

function errorOf(f: () => unknown): { code?: string; path?: unknown; validTopT?: unknown; message: string } {
  try {
    f()
  } catch (e) {
    return isMoeError(e) ? { code: e.code, path: e.details.path, validTopT: e.details.validTopT, message: e.message } : { message: String(e) }
  }
  return { message: 'no error' }
}

describe('c2r against the official Qwen1.5-MoE code (E = 12, k = 4)', () => {
  const E = 12
  const k = 4
  const lists = officialLists(E, 1)
  const { scores } = batch(40, E, 2)

  it('selects the same experts with the same weights for every T in k − 1 … E − 1, given the official lists', () => {
    for (let T = k - 1; T <= E - 1; T++) {
      for (const norm of [false, true]) {
        const ours = c2rRoute({ tokens: 40, experts: E, scores }, { topK: k, topT: T, collaborators: lists, normalizeTopK: norm })
        for (let t = 0; t < 40; t++) {
          const off = officialQwen(row(scores, t, E), lists, k, T, norm)
          const mine = Array.from(ours.expertIds.subarray(t * k, (t + 1) * k))
          expect(mine[0]).toBe(off.ids[0])
          expect(new Set(mine)).toEqual(new Set(off.ids))
          for (let j = 0; j < k; j++) expect(ours.weights[t * k + j]).toBeCloseTo(off.weights[off.ids.indexOf(mine[j])], 6)
        }
      }
    }
  })

  it('T = E and beyond: the official code selects the top-1 expert twice; c2r refuses with a coded error', () => {
    for (const T of [E, E + 5]) {
      for (let t = 0; t < 40; t++) {
        const off = officialQwen(row(scores, t, E), lists, k, T, false)
        expect(off.ids.filter((e) => e === off.ids[0])).toHaveLength(2)
      }
      const err = errorOf(() => c2rRoute({ tokens: 40, experts: E, scores }, { topK: k, topT: T, collaborators: lists, normalizeTopK: false }))
      expect(err).toMatchObject({ code: 'MOE_ROUTE_ERR_INPUT_INVALID', path: '/topT', validTopT: { min: k - 1, max: E - 1 } })
      expect(err.message).toMatch(/selects the top-1 expert twice/)
    }
  })

  it('T < k − 1: the official code asserts; c2r refuses with a coded error', () => {
    expect(() => officialQwen(row(scores, 0, E), lists, k, k - 2, false)).toThrow(/AssertionError/)
    const err = errorOf(() => c2rRoute({ tokens: 40, experts: E, scores }, { topK: k, topT: k - 2, collaborators: lists, normalizeTopK: false }))
    expect(err).toMatchObject({ code: 'MOE_ROUTE_ERR_INPUT_INVALID', path: '/topT' })
    expect(err.message).toMatch(/below k − 1 = 3/)
  })
})

describe('c2r against the official LLaMA-MoE code (E = 8)', () => {
  const E = 8
  const lists = officialLists(E, 3)
  const { logits, scores } = batch(40, E, 4)

  it('k = 2: same experts in the same order, weights = softmax of the k logits, for T = 1 … E − 1', () => {
    for (let T = 1; T <= E - 1; T++) {
      const ours = c2rRoute({ tokens: 40, experts: E, logits }, { topK: 2, topT: T, collaborators: lists, normalizeTopK: true })
      for (let t = 0; t < 40; t++) {
        const off = officialLlama(row(logits, t, E), lists, 2, T)
        expect(Array.from(ours.expertIds.subarray(t * 2, t * 2 + 2))).toEqual(off.ids)
        expect(ours.weights[t * 2]).toBeCloseTo(off.weights[0], 5)
        expect(ours.weights[t * 2 + 1]).toBeCloseTo(off.weights[1], 5)
      }
    }
  })

  it('T = E (k = 2): the official code pairs the top-1 expert with itself; c2r refuses', () => {
    for (let t = 0; t < 40; t++) {
      const off = officialLlama(row(logits, t, E), lists, 2, E)
      expect(off.ids).toEqual([off.ids[0], off.ids[0]])
    }
    expect(errorOf(() => c2rRoute({ tokens: 40, experts: E, scores }, { topK: 2, topT: E, collaborators: lists, normalizeTopK: true })).path).toBe('/topT')
  })

  it('k = 3: the official code raises for 2 ≤ T < k; c2r routes T = k − 1 = 2 (documented) and refuses T = 1', () => {
    expect(() => officialLlama(row(logits, 0, E), lists, 3, 2)).toThrow(/out of range/)
    const ours = c2rRoute({ tokens: 40, experts: E, logits }, { topK: 3, topT: 2, collaborators: lists, normalizeTopK: true })
    for (let t = 0; t < 40; t++) {
      const e1 = argmax(row(logits, t, E))
      const [first, a, b] = Array.from(ours.expertIds.subarray(t * 3, t * 3 + 3))
      // T = k − 1: the top-1 plus both listed collaborators, best score first.
      expect(first).toBe(e1)
      expect(new Set([a, b])).toEqual(new Set(lists[e1].slice(0, 2)))
      expect(scores[t * E + a]).toBeGreaterThan(scores[t * E + b])
    }
    // T = 1 with k = 3: the official code takes the first two list entries anyway; c2r refuses.
    const off = officialLlama(row(logits, 0, E), lists, 3, 1)
    expect(off.ids.slice(1)).toEqual(lists[off.ids[0]].slice(0, 2))
    expect(errorOf(() => c2rRoute({ tokens: 1, experts: E, logits: logits.subarray(0, E) }, { topK: 3, topT: 1, collaborators: lists, normalizeTopK: true })).code).toBe(
      'MOE_ROUTE_ERR_INPUT_INVALID',
    )
  })

  it('refuses non-integer T', () => {
    const err = errorOf(() => c2rRoute({ tokens: 40, experts: E, scores }, { topK: 2, topT: 2.5, collaborators: lists, normalizeTopK: true }))
    expect(err).toMatchObject({ code: 'MOE_ROUTE_ERR_INPUT_INVALID', path: '/topT' })
  })
})
