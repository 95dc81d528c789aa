/**
 * The reroute policy next to the official v1 Token Reroute code, which has a defect.
 *
 * ┌──────────────────────────────────────────────────────────────────────────────────────┐
 * │ OFFICIAL-CODE PORT, test-only and defective on purpose: `officialV1` below is a       │
 * │ line-by-line TypeScript port of CASE-Lab-UMD/Capacity-Aware-MoE commit 883bccb,        │
 * │ `models/modeling_olmoe.py`, `OlmoeSparseMoeBlock.adjust_tokens`, strategy "score"     │
 * │ (the multi-round reroute of arXiv 2503.05066 v1). It is not part of the package.       │
 * └──────────────────────────────────────────────────────────────────────────────────────┘
 *
 * The defect (SPEC A.4): after each drop pass the code maps keep flags back to top-k slots with
 * `utilized_mask[mask].view(topk_idx.size())`. Boolean indexing reads a token's flags in
 * ascending expert order, but `topk_idx` holds `torch.topk(..., sorted=False)` positions, whose
 * order is a library detail. When the two orders differ, a token keeps a pair that was dropped
 * and loses one that was kept, so the recorded `topk_idx` can exceed the capacity.
 * `torch.topk(sorted=False)` is modelled by `TopkOrder`: `descending` (what CPU torch 2.13
 * returned for every row of the example below) or `ascendingExpert` (the alignment fixed).
 */
import { pairsOf, type Routing } from '@moe-route/core'
import { policyContext, randomRouting, routingFromRows } from '@moe-route/core/testing'
import { capacityOf } from '../shared/index.js'
import { describe, expect, it } from 'vitest'
import { createReroute } from './index.js'

/** The order in which `torch.topk(row, k, sorted=False)` returns its k indices. */
type TopkOrder = (row: readonly number[], k: number) => number[]
const byScore = (row: readonly number[]) => row.map((_, e) => e).sort((a, b) => row[b] - row[a] || a - b)
const descending: TopkOrder = (row, k) => byScore(row).slice(0, k)
const ascendingExpert: TopkOrder = (row, k) => descending(row, k).sort((a, b) => a - b)

/** torch.kthvalue(values, k): the k-th smallest (1-based). */
const kthvalue = (values: readonly number[], k: number) => [...values].sort((a, b) => a - b)[k - 1]

/** Port of v1 `adjust_tokens` (strategy "score"); returns the recorded (topk_weight, topk_idx). */
function officialV1(scoresIn: readonly (readonly number[])[], topK: number, rounds: number, expertCapacity: number, order: TopkOrder) {
  const scores = scoresIn.map((r) => [...r]) // the code writes −1 into `scores` in place
  const T = scores.length
  const E = scores[0].length
  let under: boolean[] | null = null // under_selected_indices (a T-long boolean mask)
  let topkWeight: number[][] = []
  let topkIdx: number[][] = []
  let utilized: boolean[][] = [] // after `.view(topk_idx.size())`: one flag per top-k slot
  const topk = (t: number) => {
    topkIdx[t] = order(scores[t], topK)
    topkWeight[t] = topkIdx[t].map((e) => scores[t][e])
  }
  for (let r = 0; r < rounds; r++) {
    if (under === null) {
      topkWeight = new Array(T)
      topkIdx = new Array(T)
      for (let t = 0; t < T; t++) topk(t)
    } else {
      // `if under_selected_indices.size()[0] == 0: break` never fires: the mask has T entries.
      for (let t = 0; t < T; t++) if (under[t]) topk(t)
    }
    const mask = topkIdx.map((idx) => Array.from({ length: E }, (_, e) => idx.includes(e)))
    const overflow = Array.from({ length: E }, (_, e) => Math.max(0, mask.reduce((n, row) => n + (row[e] ? 1 : 0), 0) - expertCapacity))
    const util = mask.map((row) => [...row])
    for (let i = 0; i < E; i++) {
      if (overflow[i] <= 0) continue
      const sub = util.map((row, t) => (row[i] ? t : -1)).filter((t) => t >= 0)
      const importance = sub.map((t) => scores[t][i])
      const threshold = kthvalue(importance, overflow[i])
      sub.forEach((t, n) => (util[t][i] = importance[n] > threshold && importance[n] > 0))
    }
    for (let t = 0; t < T; t++) for (let e = 0; e < E; e++) if (mask[t][e] !== util[t][e]) scores[t][e] = -1 // scores[mask ^ utilized] = -1
    under = util.map((row) => row.filter(Boolean).length < topK)
    // utilized_mask[mask].view(topk_idx.size()): each token's flags in ascending expert order,
    // laid onto its top-k slots in topk order. This is the misalignment.
    utilized = util.map((row, t) => row.filter((_, e) => mask[t][e]))
    topkWeight = topkWeight.map((w, t) => w.map((x, j) => (utilized[t][j] ? x : 0)))
  }
  topkIdx = topkIdx.map((idx, t) => idx.map((e, j) => (utilized[t][j] ? e : E))) // topk_idx[~utilized_mask] = num_experts
  return { topkWeight, topkIdx }
}

/** Pairs actually computed from the recorded output (the sentinel E is never computed). */
function recordedPairs(out: ReturnType<typeof officialV1>, E: number): [number, number, number][] {
  const pairs: [number, number, number][] = []
  out.topkIdx.forEach((idx, t) => idx.forEach((e, j) => e < E && pairs.push([t, e, out.topkWeight[t][j]])))
  return pairs.sort((a, b) => a[0] - b[0] || a[1] - b[1])
}

const loads = (pairs: readonly (readonly number[])[], E: number) => {
  const l = new Array<number>(E).fill(0)
  for (const [, e] of pairs) l[e]++
  return l
}

const ours = (routing: Routing, capacityFactor: number, rounds: number) =>
  pairsOf(createReroute({ capacityFactor, rounds, renormalize: 'none' }).apply(routing, policyContext(routing.experts)).routing)
    .map((p) => [p.token, p.expert, p.weight] as [number, number, number])
    .sort((a, b) => a[0] - b[0] || a[1] - b[1])

const rowsOf = (r: Routing) => Array.from({ length: r.tokens }, (_, t) => Array.from(r.scores.subarray(t * r.experts, (t + 1) * r.experts)))

// The README example. E = 4, k = 2, T = 4, γ = 1 → C = ceil(1·2·4/4) = 2.
// Token 2's top-2 is {3 (.40), 0 (.30)}; topk(sorted=False) lists it as [3, 0], not [0, 3].
const EXAMPLE = [
  [0.5, 0.3, 0.12, 0.08],
  [0.45, 0.11, 0.35, 0.09],
  [0.3, 0.2, 0.1, 0.4],
  [0.05, 0.35, 0.45, 0.15],
]

describe('official v1 reroute (defective port) vs the reroute policy', () => {
  const routing = routingFromRows(EXAMPLE, { topK: 2 })
  const scores = rowsOf(routing)
  const C = capacityOf(1, 4, 2, 4, 'ceil')

  it('rounds = 1: the recorded v1 output puts 3 pairs on expert 0 (C = 2); ours keeps every expert ≤ C', () => {
    expect(C).toBe(2)
    const v1 = officialV1(scores, 2, 1, C, descending)
    // Expert 0 is over by one and drops its lowest pair, token 2's (.30) — but token 2's flags
    // [drop e0, keep e3] land on slots [e3, e0]: it records e0 kept and e3 dropped.
    expect(v1.topkIdx).toEqual([[0, 1], [0, 2], [4, 0], [2, 1]])
    expect(loads(recordedPairs(v1, 4), 4)).toEqual([3, 2, 2, 0])
    const mine = ours(routing, 1, 1)
    expect(mine.map(([t, e]) => [t, e])).toEqual([[0, 0], [0, 1], [1, 0], [1, 2], [2, 3], [3, 1], [3, 2]])
    expect(loads(mine, 4)).toEqual([2, 2, 2, 1])
  })

  it('rounds = 2: token 2 re-selects expert 1, loses it again, and v1 records it at expert 1 (3 pairs)', () => {
    const v1 = officialV1(scores, 2, 2, C, descending)
    expect(v1.topkIdx).toEqual([[0, 1], [0, 2], [4, 1], [2, 1]])
    expect(loads(recordedPairs(v1, 4), 4)).toEqual([2, 3, 2, 0])
    const mine = ours(routing, 1, 2)
    expect(loads(mine, 4)).toEqual([2, 2, 2, 1])
    expect(mine.filter(([t]) => t === 2).map(([, e]) => e)).toEqual([3])
  })

  it('with the alignment fixed (top-k in ascending expert order) v1 gives exactly our result', () => {
    for (const rounds of [1, 2, 3]) {
      const fixed = recordedPairs(officialV1(scores, 2, rounds, C, ascendingExpert), 4)
      expect(fixed.map(([t, e]) => [t, e])).toEqual(ours(routing, 1, rounds).map(([t, e]) => [t, e]))
    }
  })

  it('on random tie-free batches: fixed v1 = ours on every pair and weight; defective v1 exceeds C somewhere', () => {
    let exceeded = 0
    let cases = 0
    for (const [E, k] of [
      [8, 2],
      [16, 4],
      [6, 1],
    ]) {
      for (let seed = 1; seed <= 12; seed++) {
        const r = randomRouting(24 + seed, E, k, seed * 31 + E)
        const rows = rowsOf(r)
        for (const gamma of [0.5, 1, 1.5]) {
          for (const rounds of [1, 2, 3]) {
            if (E < k * rounds) continue // then v1 can re-select a banned (−1) pair; ours never does
            const cap = capacityOf(gamma, r.tokens, k, E, 'ceil')
            const fixed = recordedPairs(officialV1(rows, k, rounds, cap, ascendingExpert), E)
            const mine = ours(r, gamma, rounds)
            expect(mine.map(([t, e]) => [t, e])).toEqual(fixed.map(([t, e]) => [t, e]))
            mine.forEach(([, , w], i) => expect(w).toBeCloseTo(fixed[i][2], 6))
            expect(Math.max(...loads(mine, E))).toBeLessThanOrEqual(cap)
            if (Math.max(...loads(recordedPairs(officialV1(rows, k, rounds, cap, descending), E), E)) > cap) exceeded++
            cases++
          }
        }
      }
    }
    expect(cases).toBeGreaterThan(250)
    expect(exceeded).toBeGreaterThan(0)
  })
})
