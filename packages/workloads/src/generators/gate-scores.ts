/**
 * Gate scores that agree with given expert choices. For each token: draw E router logits
 * i.i.d. N(0, σ²), sort them, keep a minimum gap between the k+1 largest, give the k largest
 * to the chosen experts in slot order (slot 0 gets the largest) and the rest to the other
 * experts in random order, then softmax. The chosen experts are then exactly the top-k of the
 * scores in slot order (ties cannot happen), so score-ranking policies see the recorded
 * choice, and the score distribution is that of a softmax over Gaussian logits.
 * With recorded weights, the chosen logits are log(w) shifted so the smallest chosen one sits
 * at the k-th drawn value: renormalised top-k scores then equal the recorded weights.
 */
import { normal } from '@moe-route/core'

/** Options of the gate-score synthesis. */
export interface GateScoreOptions {
  /** Standard deviation σ of the drawn router logits (default 1). */
  readonly logitStd?: number
  /** Minimum logit gap between consecutive top-(k+1) values (default 0.01: no float32 ties). */
  readonly minGap?: number
}

/** Default σ of synthesized router logits. */
export const DEFAULT_LOGIT_STD = 1

/**
 * Writes softmax scores for `tokens` tokens whose slot-ordered choices are in `expertIds`
 * (tokens × k) into a new tokens × experts Float32Array. `weights` (tokens × k, optional)
 * are recorded combine weights to reproduce (a token whose first weight is NaN has none). Consumes a fixed number of draws per token.
 */
export function synthesizeScores(
  tokens: number,
  experts: number,
  topK: number,
  expertIds: Int32Array,
  random: () => number,
  weights?: ArrayLike<number> | null,
  options: GateScoreOptions = {},
): Float32Array {
  const sigma = options.logitStd ?? DEFAULT_LOGIT_STD
  const gap = options.minGap ?? 0.01
  const gauss = normal(random)
  const scores = new Float32Array(tokens * experts)
  const z = new Float64Array(experts)
  const logit = new Float64Array(experts)
  const chosen = new Uint8Array(experts)
  const others = new Int32Array(experts)
  for (let t = 0; t < tokens; t++) {
    for (let e = 0; e < experts; e++) z[e] = sigma * gauss()
    z.sort().reverse()
    for (let i = 0; i < Math.min(topK, experts - 1); i++) if (z[i + 1] > z[i] - gap) z[i + 1] = z[i] - gap
    // pushing the top values down may have moved z[k] below later draws: cap the tail at z[k]
    for (let i = topK + 1; i < experts; i++) if (z[i] > z[topK]) z[i] = z[topK]
    chosen.fill(0)
    const base = t * topK
    if (weights && !Number.isNaN(weights[base])) {
      let minLog = Infinity
      let maxW = 0
      for (let j = 0; j < topK; j++) maxW = Math.max(maxW, weights[base + j])
      const floor = maxW > 0 ? maxW * 1e-6 : 1
      for (let j = 0; j < topK; j++) minLog = Math.min(minLog, Math.log(Math.max(weights[base + j], floor)))
      for (let j = 0; j < topK; j++) {
        const e = expertIds[base + j]
        logit[e] = Math.log(Math.max(weights[base + j], floor)) - minLog + z[topK - 1]
        chosen[e] = 1
      }
    } else {
      for (let j = 0; j < topK; j++) {
        logit[expertIds[base + j]] = z[j]
        chosen[expertIds[base + j]] = 1
      }
    }
    let n = 0
    for (let e = 0; e < experts; e++) if (!chosen[e]) others[n++] = e
    for (let i = n - 1; i > 0; i--) {
      const j = Math.floor(random() * (i + 1))
      const tmp = others[i]
      others[i] = others[j]
      others[j] = tmp
    }
    for (let i = 0; i < n; i++) logit[others[i]] = z[topK + i]
    let max = -Infinity
    for (let e = 0; e < experts; e++) if (logit[e] > max) max = logit[e]
    let sum = 0
    for (let e = 0; e < experts; e++) sum += Math.exp(logit[e] - max)
    const o = t * experts
    for (let e = 0; e < experts; e++) scores[o + e] = Math.exp(logit[e] - max) / sum
  }
  return scores
}

/** Combine weights of the k chosen experts from scores: renormalised over the k (Mixtral) or raw. */
export function weightsFromScores(scores: Float32Array, experts: number, topK: number, expertIds: Int32Array, normalizeTopK: boolean): Float32Array {
  const tokens = expertIds.length / topK
  const out = new Float32Array(expertIds.length)
  for (let t = 0; t < tokens; t++) {
    let sum = 0
    for (let j = 0; j < topK; j++) sum += scores[t * experts + expertIds[t * topK + j]]
    for (let j = 0; j < topK; j++) {
      const s = scores[t * experts + expertIds[t * topK + j]]
      out[t * topK + j] = normalizeTopK ? s / sum : s
    }
  }
  return out
}
