/**
 * Gate scores in closed form: what the generators attach to their expert choices without
 * drawing E logits per token. The model is the one of `synthesizeScores` (router logits i.i.d.
 * N(0, σ²), the chosen experts hold the k largest in slot order, softmax over all E), sampled
 * differently so that a token costs O(k) unless its full row is read:
 *
 * - The k largest logits are drawn exactly as the top-k order statistics of E normals
 *   (log U₍₁₎ = log V₁/E, log U₍ⱼ₎ = log U₍ⱼ₋₁₎ + log Vⱼ/(E−j+1), z = σ·Φ⁻¹(U)), with a minimum
 *   gap between consecutive ones (no float32 ties).
 * - The other E−k logits are, given the k-th value c, i.i.d. normals truncated below c. They are
 *   represented by their stratified quantiles σ·Φ⁻¹((i+½)/(E−k)·Φ(c/σ)) (capped at c − gap),
 *   with c rounded down to a 10⁻³ grid so the tail and its exp-sum are a cached function of
 *   one integer: the softmax denominator is exact for the row that is later made, and made rows
 *   give the tail values to the non-chosen experts in a per-token random order.
 *
 * So the routed pairs' scores and weights cost k quantiles per token, and `row(t)` (the full
 * vector, when a policy or a consumer reads it) costs O(E) and always returns the same values.
 */
import { pcgHash, type ScoreRows } from '@moe-route/core'
import { normalCdf, normalQuantile } from './normal.js'

/** Options of the score model. */
export interface ScoreModelOptions {
  /** Standard deviation σ of the router logits (default 1). */
  readonly logitStd?: number
  /** Minimum logit gap between consecutive top-(k+1) values (default 0.01). */
  readonly minGap?: number
}

/** Grid of the k-th logit the tail is cached on. */
const QUANTUM = 1e-3

/**
 * g(L) = −Φ⁻¹(q) for the upper-tail probability q = −expm1(s) of an order statistic with
 * log-uniform s = −e^L, tabulated on L ∈ [L0, L1] (linear interpolation, error < 1e-6 in z);
 * outside the table it is computed directly.
 */
const L0 = -24
const L1 = 4
const STEPS = 1 << 14
const STEP = (L1 - L0) / STEPS
let upperTable: Float64Array | null = null
function upperZ(L: number): number {
  return -normalQuantile(-Math.expm1(-Math.exp(L)))
}
function upperTableOf(): Float64Array {
  if (!upperTable) {
    upperTable = new Float64Array(STEPS + 1)
    for (let i = 0; i <= STEPS; i++) upperTable[i] = upperZ(L0 + i * STEP)
  }
  return upperTable
}

/**
 * ln x for positive finite doubles from the exponent bits and a 4096-entry table of the
 * mantissa with linear interpolation (absolute error < 1e-8), a few times faster than Math.log
 * in the generator's per-pair loop.
 */
const LOG_BITS = 12
const logTable = new Float64Array((1 << LOG_BITS) + 1)
for (let i = 0; i <= 1 << LOG_BITS; i++) logTable[i] = Math.log1p(i / (1 << LOG_BITS))
const bits = new Float64Array(1)
const words = new Uint32Array(bits.buffer)
const HI = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1 ? 1 : 0 // little-endian: the high word is [1]
function fastLog(x: number): number {
  bits[0] = x
  const hi = words[HI]
  const exp = (hi >>> 20) - 1023
  if (exp === -1023 || exp === 1024) return Math.log(x) // subnormal, zero, infinity, NaN
  // 20 mantissa bits of the high word: 12 index the table, 8 (plus the low word) interpolate
  const m = hi & 0xfffff
  const i = m >>> 8
  const frac = ((m & 0xff) + words[1 - HI] / 4294967296) / 256
  return exp * Math.LN2 + logTable[i] + frac * (logTable[i + 1] - logTable[i])
}

/** A uniform generator whose state is set per (stream, token): any token range can be made on its own. */
export class TokenRandom {
  private a = 0
  /** The next uniform draw in [0, 1). */
  readonly next = (): number => {
    this.a = (this.a + 0x6d2b79f5) >>> 0
    let t = this.a
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  /** Positions the generator at the start of `token`'s draws in `stream`. */
  at(stream: number, token: number): void {
    this.a = pcgHash((pcgHash(stream >>> 0) + Math.imul(token, 0x9e3779b9)) >>> 0)
  }
}

const TAIL_KEY_MIN = -10_000
const TAIL_KEYS = 20_000

interface Tail {
  /** exp(x_i − c) of the E−k tail logits, ascending. */
  readonly rel: Float64Array
  /** Σ rel. */
  readonly sum: number
}

/** The closed-form score model for E experts, top-k. */
export class ScoreModel {
  readonly sigma: number
  readonly gap: number
  /** Tails by key − {@link TAIL_KEY_MIN} (keys outside the range go to the map). */
  // filled up front: an array written at scattered indices turns into a slow dictionary
  private readonly tailArray: (Tail | undefined)[] = new Array<Tail | undefined>(TAIL_KEYS).fill(undefined)
  private readonly tails = new Map<number, Tail>()
  private readonly table = upperTableOf()
  private readonly z: Float64Array
  private readonly ex: Float64Array

  constructor(
    readonly experts: number,
    readonly topK: number,
    options: ScoreModelOptions = {},
  ) {
    this.sigma = options.logitStd ?? 1
    this.gap = options.minGap ?? 0.01
    this.z = new Float64Array(topK)
    this.ex = new Float64Array(topK)
  }

  /** The tail of key `key` (k-th logit rounded down to key·10⁻³). */
  tail(key: number): Tail {
    const slot = key - TAIL_KEY_MIN
    const inArray = slot >= 0 && slot < TAIL_KEYS
    let tail = inArray ? this.tailArray[slot] : this.tails.get(key)
    if (tail) return tail
    const n = this.experts - this.topK
    const c = key * QUANTUM
    const cap = c - this.gap
    const top = normalCdf(c / this.sigma)
    const rel = new Float64Array(n)
    let sum = 0
    for (let i = 0; i < n; i++) {
      const p = ((i + 0.5) / n) * top
      const x = Math.min(cap, this.sigma * normalQuantile(p))
      rel[i] = Math.exp(x - c)
    }
    rel.sort()
    for (let i = 0; i < n; i++) sum += rel[i]
    tail = { rel, sum }
    if (inArray) this.tailArray[slot] = tail
    else this.tails.set(key, tail)
    return tail
  }

  /**
   * Pair scores and weights of a batch of `tokens` tokens whose first token is `firstToken`:
   * each token's k largest logits are drawn from its own position of `stream` (k draws), then
   * softmaxed against its cached tail. Writes the k pair scores (float32, slot order) into
   * `pairs`, the router's weights into `weights` (renormalised over the k when `normalize`, else
   * the raw scores, exactly as core's softmax-top-k computes them from the scores), each token's
   * tail key into `keys` and its tail factor (exp(c − z₁)/denominator) into `factors`.
   */
  fill(tokens: number, firstToken: number, stream: number, normalize: boolean, pairs: Float32Array, weights: Float32Array, keys: Int32Array, factors: Float64Array): void {
    const { experts, topK, sigma, gap, table, z, ex } = this
    const tails = this.tailArray
    const hasTail = experts > topK
    const base = pcgHash(stream >>> 0)
    for (let t = 0; t < tokens; t++) {
      // TokenRandom.at + next, inlined
      let a = pcgHash((base + Math.imul(firstToken + t, 0x9e3779b9)) >>> 0)
      let s = 0
      for (let j = 0; j < topK; j++) {
        let v = 0
        while (v === 0) {
          a = (a + 0x6d2b79f5) >>> 0
          let r = Math.imul(a ^ (a >>> 15), a | 1)
          r ^= r + Math.imul(r ^ (r >>> 7), r | 61)
          v = ((r ^ (r >>> 14)) >>> 0) / 4294967296
        }
        s -= fastLog(v) / (experts - j)
        // z = Φ⁻¹(U₍ⱼ₎) with log U₍ⱼ₎ = −s, through the table of L = log s
        const L = fastLog(s)
        let g: number
        if (L > L0 && L < L1) {
          const f = (L - L0) / STEP
          const i = f | 0
          g = table[i] + (f - i) * (table[i + 1] - table[i])
        } else g = upperZ(L)
        let x = sigma * g
        if (j > 0 && x > z[j - 1] - gap) x = z[j - 1] - gap
        z[j] = x
      }
      const m = z[0]
      const o = t * topK
      let den = 0
      let shift = 0
      let key = 0
      if (hasTail) {
        key = Math.floor(z[topK - 1] / QUANTUM)
        shift = Math.exp(key * QUANTUM - m)
        const slot = key - TAIL_KEY_MIN
        const cached = slot >= 0 && slot < TAIL_KEYS ? tails[slot] : undefined
        den = (cached ?? this.tail(key)).sum * shift
      }
      for (let j = 0; j < topK; j++) {
        const e = j === 0 ? 1 : Math.exp(z[j] - m)
        ex[j] = e
        den += e
      }
      let sum = 0
      for (let j = 0; j < topK; j++) {
        const p = Math.fround(ex[j] / den) // the float32 score the router would read
        pairs[o + j] = p
        sum += p
      }
      if (!normalize) for (let j = 0; j < topK; j++) weights[o + j] = pairs[o + j]
      else if (sum > 0) for (let j = 0; j < topK; j++) weights[o + j] = pairs[o + j] / sum
      else for (let j = 0; j < topK; j++) weights[o + j] = 1 / topK
      keys[t] = key
      factors[t] = shift / den
    }
  }

  /**
   * The full score rows of a batch made by `finish`: token t's chosen experts get their
   * pair scores, the others the tail values in a random order drawn from (`stream`, `firstToken + t`).
   */
  rows(ids: Int32Array, pairs: Float32Array, keys: Int32Array, factors: Float64Array, stream: number, firstToken: number): ScoreRows {
    const { experts: E, topK: k } = this
    const random = new TokenRandom()
    const chosen = new Int32Array(E).fill(-1)
    const order = new Int32Array(E)
    return {
      experts: E,
      row: (t, out, offset) => {
        for (let j = 0; j < k; j++) {
          const e = ids[t * k + j]
          out[offset + e] = pairs[t * k + j]
          chosen[e] = t
        }
        if (E === k) return
        let n = 0
        for (let e = 0; e < E; e++) if (chosen[e] !== t) order[n++] = e
        random.at(stream, firstToken + t)
        for (let i = n - 1; i > 0; i--) {
          const j = Math.floor(random.next() * (i + 1))
          const x = order[i]
          order[i] = order[j]
          order[j] = x
        }
        const { rel } = this.tail(keys[t])
        const f = factors[t]
        for (let i = 0; i < n; i++) out[offset + order[i]] = rel[i] * f
        // a token index reused by another batch's rows must not see this token's marks
        for (let j = 0; j < k; j++) chosen[ids[t * k + j]] = -1
      },
    }
  }
}
