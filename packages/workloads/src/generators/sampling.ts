/**
 * Drawing k distinct experts per token with given inclusion probabilities. Systematic
 * (Madow) sampling over a freshly shuffled expert order: with π_e ≤ 1 and Σπ = k it picks
 * exactly k distinct experts and expert e is included with probability exactly π_e, so the
 * expected per-expert load equals the recorded one. The shuffle keeps pairs from depending
 * on expert numbering.
 */

/**
 * Inclusion probabilities π = k·w/Σw, capped at 1 with the excess spread over the others
 * (the standard fix for πps sampling). Fewer than k positive weights get a tiny uniform floor.
 */
export function inclusionProbabilities(weights: ArrayLike<number>, k: number): Float64Array {
  const n = weights.length
  const w = Float64Array.from(weights as ArrayLike<number>)
  let positive = 0
  for (let i = 0; i < n; i++) if (w[i] > 0) positive++
  if (positive < k) {
    let sum = 0
    for (let i = 0; i < n; i++) sum += w[i]
    const floor = (sum > 0 ? sum : 1) * 1e-9
    for (let i = 0; i < n; i++) w[i] += floor
  }
  const pi = new Float64Array(n)
  const capped = new Uint8Array(n)
  let budget = k
  for (;;) {
    let sum = 0
    for (let i = 0; i < n; i++) if (!capped[i]) sum += w[i]
    let changed = false
    for (let i = 0; i < n; i++) {
      if (capped[i]) continue
      pi[i] = (budget * w[i]) / sum
      if (pi[i] > 1) {
        capped[i] = 1
        pi[i] = 1
        budget -= 1
        changed = true
      }
    }
    if (!changed) break
  }
  return pi
}

/**
 * Draws k distinct indices with inclusion probabilities `pi` (Σπ = k, π ≤ 1) into
 * `out[offset .. offset+k)`, in shuffled order. `order` is scratch of length pi.length.
 */
export function drawSystematic(pi: Float64Array, k: number, random: () => number, order: Int32Array, out: Int32Array, offset: number): void {
  const n = pi.length
  for (let i = 0; i < n; i++) order[i] = i
  for (let i = n - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1))
    const t = order[i]
    order[i] = order[j]
    order[j] = t
  }
  let point = random()
  let cum = 0
  let got = 0
  let last = -1
  for (let i = 0; i < n && got < k; i++) {
    const e = order[i]
    const next = cum + pi[e]
    if (pi[e] > 0 && point < next) {
      out[offset + got++] = e
      point += 1
    }
    cum = next
    if (pi[e] > 0) last = i
  }
  // float round-off can leave the last point just past Σπ: take the last unpicked experts
  for (let i = last; got < k && i >= 0; i--) {
    const e = order[i]
    let taken = false
    for (let j = 0; j < got; j++) if (out[offset + j] === e) taken = true
    if (!taken) out[offset + got++] = e
  }
}

/**
 * Puts one chosen expert first, drawn with probability ∝ `bias[e]` among the k chosen
 * (e.g. bias = top1/topk counts, so the first-choice marginal follows the recorded top-1
 * counts); the others keep their (random) order.
 */
export function pickFirst(bias: Float64Array, k: number, random: () => number, out: Int32Array, offset: number): void {
  let sum = 0
  for (let j = 0; j < k; j++) sum += bias[out[offset + j]]
  if (!(sum > 0)) return
  let r = random() * sum
  let pick = k - 1
  for (let j = 0; j < k; j++) {
    r -= bias[out[offset + j]]
    if (r < 0) {
      pick = j
      break
    }
  }
  const t = out[offset]
  out[offset] = out[offset + pick]
  out[offset + pick] = t
}
