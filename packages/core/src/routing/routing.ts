/**
 * Helpers to build, inspect and check routings. Tie-breaks everywhere in moe-route:
 * higher score first, then lower token index, then lower expert index.
 */
import { ErrorCodes, MoeError } from '../errors.js'
import type { Pair, Routing } from '../types.js'

/** Row-wise softmax of a tokens × experts matrix (float64 accumulation, max-subtracted). */
export function softmaxRows(logits: Float32Array, tokens: number, experts: number): Float32Array {
  const out = new Float32Array(tokens * experts)
  for (let t = 0; t < tokens; t++) {
    const o = t * experts
    let max = -Infinity
    for (let e = 0; e < experts; e++) if (logits[o + e] > max) max = logits[o + e]
    let sum = 0
    for (let e = 0; e < experts; e++) sum += Math.exp(logits[o + e] - max)
    for (let e = 0; e < experts; e++) out[o + e] = Math.exp(logits[o + e] - max) / sum
  }
  return out
}

/**
 * Top-k selection, the one used by every router and candidate list: the k best indices of
 * `row[offset + e]`, by value descending, then index ascending. Over e = 0 .. n−1, or over
 * the n indices `candidates[0 .. n)` when given (in any order; ties still go to the lower
 * index). Writes into `out` (length ≥ k). O(n·k), fine for E ≤ 512, k ≤ 16.
 * @example
 * topKIndices(scores, t * E, E, k, idx)                    // top-k of token t over all experts
 * topKIndices(scores, t * E, topT, k - 1, rest, collaborators[e1]) // top-(k−1) of a candidate list
 */
export function topKIndices(row: ArrayLike<number>, offset: number, n: number, k: number, out: Int32Array, candidates?: ArrayLike<number>): void {
  // a beats b: higher value, then lower index
  const better = (a: number, b: number) => row[offset + a] > row[offset + b] || (row[offset + a] === row[offset + b] && a < b)
  let filled = 0
  for (let i = 0; i < n; i++) {
    const e = candidates ? candidates[i] : i
    if (filled < k) {
      let j = filled++
      while (j > 0 && better(e, out[j - 1])) {
        out[j] = out[j - 1]
        j--
      }
      out[j] = e
    } else if (k > 0 && better(e, out[k - 1])) {
      let j = k - 1
      while (j > 0 && better(e, out[j - 1])) {
        out[j] = out[j - 1]
        j--
      }
      out[j] = e
    }
  }
}

/**
 * Writes token t's k chosen experts and their combine weights (slots t·k .. t·k+k−1): each
 * weight is the expert's score, renormalised over the k when `normalizeTopK` (1/k each when
 * they sum to 0), rounded to f32. A pair whose weight is below `minWeight` is left out (expert
 * −1, weight 0); core's router passes MIN_PAIR_WEIGHT, so underflowing pairs take no capacity.
 */
export function writeTopKPairs(
  scores: ArrayLike<number>,
  offset: number,
  chosen: ArrayLike<number>,
  k: number,
  normalizeTopK: boolean,
  t: number,
  expertIds: Int32Array,
  weights: Float32Array,
  minWeight = 0,
): void {
  let sum = 0
  for (let j = 0; j < k; j++) sum += scores[offset + chosen[j]]
  for (let j = 0; j < k; j++) {
    const s = scores[offset + chosen[j]]
    const w = Math.fround(normalizeTopK ? (sum > 0 ? s / sum : 1 / k) : s)
    const kept = w >= minWeight
    expertIds[t * k + j] = kept ? chosen[j] : -1
    weights[t * k + j] = kept ? w : 0
  }
}

/**
 * A router's routing from its top-k pairs (as {@link writeTopKPairs} wrote them), carrying the
 * input's source devices and decode flag over.
 */
export function topKRouting(
  input: { readonly tokens: number; readonly experts: number; readonly sourceDevice?: Int32Array; readonly decode?: boolean },
  topK: number,
  expertIds: Int32Array,
  weights: Float32Array,
  scores: Float32Array,
  normalizeTopK: boolean,
): Routing {
  return createRouting({
    tokens: input.tokens,
    experts: input.experts,
    topK,
    expertIds,
    weights,
    scores,
    normalizeTopK,
    ...(input.sourceDevice ? { sourceDevice: input.sourceDevice } : {}),
    ...(input.decode ? { decode: true } : {}),
  })
}

/** Throws MOE_ROUTE_ERR_INPUT_NOT_FINITE naming the first NaN/Inf entry. */
export function assertFinite(values: Float32Array, columns: number, what: string): void {
  for (let i = 0; i < values.length; i++) {
    if (!Number.isFinite(values[i])) {
      const row = Math.floor(i / columns)
      throw new MoeError(
        ErrorCodes.INPUT_NOT_FINITE,
        `${what} has a non-finite value (${values[i]}) at token ${row}, expert ${i % columns}`,
        { record: row, expert: i % columns },
      )
    }
  }
}

/**
 * Gate scores are probabilities: throws MOE_ROUTE_ERR_INPUT_NOT_FINITE for NaN/Inf and
 * MOE_ROUTE_ERR_INPUT_INVALID for a negative entry (it would become a negative combine weight
 * and negative gate mass), naming the first offending token and expert.
 */
export function assertScores(values: Float32Array, columns: number, what: string): void {
  assertFinite(values, columns, what)
  for (let i = 0; i < values.length; i++) {
    if (values[i] < 0) {
      const row = Math.floor(i / columns)
      throw new MoeError(ErrorCodes.INPUT_INVALID, `${what} has a negative score (${values[i]}) at token ${row}, expert ${i % columns}: scores are gate probabilities (≥ 0)`, {
        record: row,
        expert: i % columns,
      })
    }
  }
}

/** Throws MOE_ROUTE_ERR_SHAPE_MISMATCH when an array has the wrong length. */
export function assertLength(array: { length: number }, expected: number, what: string): void {
  if (array.length !== expected) {
    throw new MoeError(
      ErrorCodes.SHAPE_MISMATCH,
      `${what} has ${array.length} elements, expected ${expected}`,
      { expected, actual: array.length },
    )
  }
}

/** Fields to build a routing from. */
export interface RoutingInit {
  tokens: number
  experts: number
  topK: number
  slots?: number
  expertIds: Int32Array
  weights: Float32Array
  scores: Float32Array
  normalizeTopK: boolean
  sourceDevice?: Int32Array
  decode?: boolean
}

/** Builds a routing, checking every array's length and every expert id. */
export function createRouting(init: RoutingInit): Routing {
  const slots = init.slots ?? init.topK
  if (!Number.isInteger(init.tokens) || init.tokens < 0) {
    throw new MoeError(ErrorCodes.INPUT_INVALID, `tokens must be a non-negative integer, got ${init.tokens}`)
  }
  if (init.topK > init.experts) {
    throw new MoeError(ErrorCodes.TOPK_EXCEEDS_EXPERTS, `topK ${init.topK} exceeds experts ${init.experts}`)
  }
  assertLength(init.expertIds, init.tokens * slots, 'expertIds')
  assertLength(init.weights, init.tokens * slots, 'weights')
  assertLength(init.scores, init.tokens * init.experts, 'scores')
  if (init.sourceDevice) assertLength(init.sourceDevice, init.tokens, 'sourceDevice')
  for (let i = 0; i < init.expertIds.length; i++) {
    const e = init.expertIds[i]
    if (e < -1 || e >= init.experts) {
      throw new MoeError(ErrorCodes.INPUT_INVALID, `expert id ${e} at token ${Math.floor(i / slots)} is outside 0..${init.experts - 1}`, {
        record: Math.floor(i / slots),
      })
    }
  }
  return { ...init, slots }
}

/** Calls `fn` for every non-empty slot, in token order then slot order. */
export function forEachPair(routing: Routing, fn: (token: number, expert: number, weight: number, slot: number) => void): void {
  const { tokens, slots, expertIds, weights } = routing
  for (let t = 0; t < tokens; t++) {
    for (let j = 0; j < slots; j++) {
      const e = expertIds[t * slots + j]
      if (e >= 0) fn(t, e, weights[t * slots + j], j)
    }
  }
}

/** All pairs of a routing in token order. */
export function pairsOf(routing: Routing): Pair[] {
  const out: Pair[] = []
  forEachPair(routing, (token, expert, weight) => out.push({ token, expert, weight }))
  return out
}

/** Pairs per expert (length E). */
export function expertLoad(routing: Routing): number[] {
  const load = new Array<number>(routing.experts).fill(0)
  forEachPair(routing, (_t, e) => load[e]++)
  return load
}

/** max/mean of a load vector (mean over all entries); 0 for an empty load. */
export function maxOverMean(load: readonly number[]): number {
  let sum = 0
  let max = 0
  for (const l of load) {
    sum += l
    if (l > max) max = l
  }
  return sum === 0 ? 0 : max / (sum / load.length)
}

/**
 * Balancedness of a load vector as vLLM's expert-parallel load balancer defines it: mean load ÷
 * max load (1 = perfectly balanced, 1/E = everything on one expert). The reciprocal of
 * {@link maxOverMean}; 0 for an empty or all-zero load (nothing ran), as engines report it.
 */
export function balancedness(load: readonly number[]): number {
  const m = maxOverMean(load)
  return m === 0 ? 0 : 1 / m
}

/**
 * Builds a new routing from per-token pair lists (same tokens, experts, scores).
 * Slots are as wide as the longest list; within a token, pairs are ordered by weight
 * descending then expert ascending, so equal routings compare equal.
 */
export function routingFromPairs(base: Routing, pairs: readonly Pair[], minSlots = base.topK): Routing {
  const perToken: Pair[][] = Array.from({ length: base.tokens }, () => [])
  for (const p of pairs) perToken[p.token].push(p)
  let slots = minSlots
  for (const list of perToken) if (list.length > slots) slots = list.length
  const expertIds = new Int32Array(base.tokens * slots).fill(-1)
  const weights = new Float32Array(base.tokens * slots)
  for (let t = 0; t < base.tokens; t++) {
    const list = perToken[t].sort((a, b) => b.weight - a.weight || a.expert - b.expert)
    for (let j = 0; j < list.length; j++) {
      expertIds[t * slots + j] = list[j].expert
      weights[t * slots + j] = list[j].weight
    }
  }
  return { ...base, slots, expertIds, weights }
}

/**
 * Compares two pairs for "keep first": score descending, then token ascending, then expert
 * ascending. Use with `scores` of the routing.
 */
export function comparePairsByScore(scores: Float32Array, experts: number) {
  return (a: { token: number; expert: number }, b: { token: number; expert: number }): number =>
    scores[b.token * experts + b.expert] - scores[a.token * experts + a.expert] || a.token - b.token || a.expert - b.expert
}

/**
 * Per-expert capacity C = rounding(x), x = γ·k·T/E (SPEC A.3, E.2), x evaluated in double
 * precision; an x within 1e-9 of a positive integer n counts as n (1.5·2·512/8 is exactly 192,
 * not 192.00000000000003). With `ceil`, any γ > 0 and T > 0 give C ≥ 1, however small γ is
 * (x is never snapped to 0, and an x that underflows to 0 still counts as positive). γ must be
 * finite (the config schema bounds it by MAX_CAPACITY_FACTOR).
 */
export function expertCapacity(
  capacityFactor: number,
  tokens: number,
  topK: number,
  experts: number,
  rounding: 'ceil' | 'floor' | 'round' = 'ceil',
): number {
  const raw = (capacityFactor * topK * tokens) / experts
  const n = Math.round(raw)
  const snapped = n >= 1 && Math.abs(raw - n) < 1e-9 ? n : raw
  if (rounding === 'ceil') return Math.max(capacityFactor > 0 && topK > 0 && tokens > 0 ? 1 : 0, Math.ceil(snapped))
  return rounding === 'floor' ? Math.floor(snapped) : Math.round(snapped)
}
