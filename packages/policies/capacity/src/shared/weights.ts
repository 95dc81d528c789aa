/** Combine weights after pairs were dropped or moved (SPEC A.3 "gate-weight handling", E.3). */
import type { Pair, Routing } from '@moe-route/core'

/**
 * How kept pairs are weighted:
 * - `none`: kept pairs keep their incoming weight; a dropped pair's weight is simply lost.
 * - `model-native`: every final pair gets the weight the model's own convention gives its
 *   score: the raw softmax probability, or (when `routing.normalizeTopK`) the probability
 *   divided by the sum over the token's incoming pairs, i.e. the original top-k denominator.
 * - `kept`: a token's final weights are rescaled to sum to 1 over its kept pairs (the v1
 *   code's `routing_weights /= routing_weights.sum()`).
 * A token with every pair dropped contributes 0 in every mode (no 0/0).
 */
export type Renormalize = 'none' | 'model-native' | 'kept'

/** Per token, the denominator of the model's native weights (1 unless `normalizeTopK`). */
export function nativeDenominators(routing: Routing): Float64Array {
  const { tokens, slots, expertIds, scores, experts, normalizeTopK } = routing
  const den = new Float64Array(tokens).fill(1)
  if (!normalizeTopK) return den
  for (let t = 0; t < tokens; t++) {
    let sum = 0
    for (let j = 0; j < slots; j++) {
      const e = expertIds[t * slots + j]
      if (e >= 0) sum += scores[t * experts + e]
    }
    den[t] = sum > 0 ? sum : 1
  }
  return den
}

/** The native weight of (token, expert): its score over the token's native denominator. */
export function nativeWeight(routing: Routing, denominators: Float64Array, token: number, expert: number): number {
  return routing.scores[token * routing.experts + expert] / denominators[token]
}

/**
 * Applies a {@link Renormalize} mode to the final pairs of a routing (returns new pairs; the
 * input is not modified). Pairs must already carry the `none` weights.
 */
export function renormalize(routing: Routing, pairs: readonly Pair[], mode: Renormalize): Pair[] {
  if (mode === 'none') return pairs.slice()
  if (mode === 'model-native') {
    const den = nativeDenominators(routing)
    return pairs.map((p) => ({ token: p.token, expert: p.expert, weight: nativeWeight(routing, den, p.token, p.expert) }))
  }
  const sums = new Float64Array(routing.tokens)
  for (const p of pairs) sums[p.token] += p.weight
  return pairs.map((p) => ({ token: p.token, expert: p.expert, weight: sums[p.token] > 0 ? p.weight / sums[p.token] : 0 }))
}
