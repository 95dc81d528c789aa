/** Routing entropy: how unsure the router is about a token. */
import type { Routing } from '@moe-route/core'

/**
 * Shannon entropy (nats) of each token's gate distribution over all experts,
 * H(t) = −Σₑ p·ln p, with the row renormalised to sum to 1. 0 for a one-hot row,
 * ln E for a uniform one. Float64 accumulation, so the result is deterministic.
 */
export function tokenEntropy(routing: Routing): Float64Array {
  const { tokens, experts, scores } = routing
  const out = new Float64Array(tokens)
  for (let t = 0; t < tokens; t++) {
    let sum = 0
    for (let e = 0; e < experts; e++) sum += Math.max(0, scores[t * experts + e])
    if (sum <= 0) continue
    let h = 0
    for (let e = 0; e < experts; e++) {
      const p = Math.max(0, scores[t * experts + e]) / sum
      if (p > 0) h -= p * Math.log(p)
    }
    out[t] = h
  }
  return out
}
