/**
 * Reference kernels over Float32Array (f32 arithmetic, f64 only where noted). They define
 * what every other backend must compute; the WebGPU kernels are checked against them.
 */
import { ErrorCodes, MoeError, assertLength, l2Norm as coreL2Norm, type DispatchPlan, type ExpertWeights, type LayerWeights } from '@moe-route/core'

/** logits[T×E] = x[T×H] · router[E×H]ᵀ (f32 accumulation in a Float64 temp for stability). */
export function gateMatmul(x: Float32Array, router: Float32Array, tokens: number, hidden: number, experts: number): Float32Array {
  assertLength(x, tokens * hidden, 'hidden states')
  assertLength(router, experts * hidden, 'router weight')
  const out = new Float32Array(tokens * experts)
  for (let t = 0; t < tokens; t++) {
    const xo = t * hidden
    for (let e = 0; e < experts; e++) {
      const wo = e * hidden
      let acc = 0
      for (let h = 0; h < hidden; h++) acc += x[xo + h] * router[wo + h]
      out[t * experts + e] = acc
    }
  }
  return out
}

/** silu(v) = v·σ(v). */
export const silu = (v: number): number => v / (1 + Math.exp(-v))

/**
 * One expert's SwiGLU on `rows` input vectors gathered in `xs` (rows × H), written to
 * `ys` (rows × H): y = down(silu(gate·x) ⊙ (up·x)). Processes 4 rows at a time so each
 * weight row is read once per 4 tokens.
 */
export function swiglu(xs: Float32Array, rows: number, w: ExpertWeights, hidden: number, intermediate: number, ys: Float32Array): void {
  const H = hidden
  const I = intermediate
  const act = new Float32Array(4 * I)
  for (let r0 = 0; r0 < rows; r0 += 4) {
    const n = Math.min(4, rows - r0)
    for (let i = 0; i < I; i++) {
      const wo = i * H
      let g0 = 0, g1 = 0, g2 = 0, g3 = 0, u0 = 0, u1 = 0, u2 = 0, u3 = 0
      const x0 = r0 * H
      for (let h = 0; h < H; h++) {
        const wg = w.gate[wo + h]
        const wu = w.up[wo + h]
        const a = xs[x0 + h]
        g0 += wg * a
        u0 += wu * a
        if (n > 1) {
          const b = xs[x0 + H + h]
          g1 += wg * b
          u1 += wu * b
          if (n > 2) {
            const c = xs[x0 + 2 * H + h]
            g2 += wg * c
            u2 += wu * c
            if (n > 3) {
              const d = xs[x0 + 3 * H + h]
              g3 += wg * d
              u3 += wu * d
            }
          }
        }
      }
      act[i] = silu(g0) * u0
      act[I + i] = silu(g1) * u1
      act[2 * I + i] = silu(g2) * u2
      act[3 * I + i] = silu(g3) * u3
    }
    for (let h = 0; h < H; h++) {
      const wo = h * I
      let y0 = 0, y1 = 0, y2 = 0, y3 = 0
      for (let i = 0; i < I; i++) {
        const wd = w.down[wo + i]
        y0 += wd * act[i]
        y1 += wd * act[I + i]
        y2 += wd * act[2 * I + i]
        y3 += wd * act[3 * I + i]
      }
      ys[r0 * H + h] = y0
      if (n > 1) ys[(r0 + 1) * H + h] = y1
      if (n > 2) ys[(r0 + 2) * H + h] = y2
      if (n > 3) ys[(r0 + 3) * H + h] = y3
    }
  }
}

/**
 * Grouped experts over a dispatch plan, then the weighted combine back in token order.
 * Padding rows (token −1) are computed on zero inputs and discarded, so static gating pays
 * for its padding here too. Tokens with no row get 0.
 */
export function expertsForward(x: Float32Array, plan: DispatchPlan, weights: LayerWeights): Float32Array {
  const { hidden: H, intermediate: I, experts: E } = weights.shape
  assertLength(x, plan.tokens * H, 'hidden states')
  if (plan.experts !== E) {
    throw new MoeError(ErrorCodes.SHAPE_MISMATCH, `plan has ${plan.experts} experts, weights have ${E}`)
  }
  const out = new Float32Array(plan.tokens * H)
  let maxRows = 0
  for (let e = 0; e < E; e++) maxRows = Math.max(maxRows, plan.offsets[e + 1] - plan.offsets[e])
  const xs = new Float32Array(maxRows * H)
  const ys = new Float32Array(maxRows * H)
  for (let e = 0; e < E; e++) {
    const start = plan.offsets[e]
    const rows = plan.offsets[e + 1] - start
    if (rows === 0) continue
    xs.fill(0, 0, rows * H)
    for (let r = 0; r < rows; r++) {
      const t = plan.rowToken[start + r]
      if (t >= 0) xs.set(x.subarray(t * H, (t + 1) * H), r * H)
    }
    swiglu(xs, rows, weights.experts[e], H, I, ys)
    for (let r = 0; r < rows; r++) {
      const t = plan.rowToken[start + r]
      if (t < 0) continue
      const w = plan.rowWeight[start + r]
      const o = t * H
      for (let h = 0; h < H; h++) out[o + h] += w * ys[r * H + h]
    }
  }
  return out
}

/**
 * The naive per-token loop the grouped path is checked against: for each token, for each
 * (expert, weight) pair, add weight · expert(x[t]).
 */
export function naiveTokenLoop(
  x: Float32Array,
  tokens: number,
  pairs: readonly { token: number; expert: number; weight: number }[],
  weights: LayerWeights,
): Float32Array {
  const { hidden: H, intermediate: I } = weights.shape
  const out = new Float32Array(tokens * H)
  const h = new Float64Array(I)
  for (const p of pairs) {
    const w = weights.experts[p.expert]
    const xo = p.token * H
    for (let i = 0; i < I; i++) {
      let g = 0
      let u = 0
      for (let k = 0; k < H; k++) {
        g += w.gate[i * H + k] * x[xo + k]
        u += w.up[i * H + k] * x[xo + k]
      }
      h[i] = silu(g) * u
    }
    for (let k = 0; k < H; k++) {
      let y = 0
      for (let i = 0; i < I; i++) y += w.down[k * I + i] * h[i]
      out[xo + k] += p.weight * y
    }
  }
  return out
}

/** L2 norm of a vector (f64 accumulation): core's, which computes every output norm. */
export const l2Norm = coreL2Norm

/** ‖a − b‖ / ‖b‖ (0 when both are 0). */
export function relativeL2(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let num = 0
  let den = 0
  for (let i = 0; i < a.length; i++) {
    const d = a[i] - b[i]
    num += d * d
    den += b[i] * b[i]
  }
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num / den)
}

/**
 * max |a − b| / max |b|, the element-wise tolerance of the backend parity tests ("within 1e-4
 * of the largest magnitude"); Infinity when the lengths differ or `a` has a non-finite value.
 */
export function maxRelError(a: ArrayLike<number>, b: ArrayLike<number>): number {
  if (a.length !== b.length) return Infinity
  let err = 0
  let scale = 0
  for (let i = 0; i < b.length; i++) {
    if (!Number.isFinite(a[i])) return Infinity
    err = Math.max(err, Math.abs(a[i] - b[i]))
    scale = Math.max(scale, Math.abs(b[i]))
  }
  return err / Math.max(scale, 1e-30)
}

/**
 * A checksum of an output for comparing runs and backends: FNV-1a over the values rounded
 * to `digits` significant decimal digits (so f32 noise below that does not change it).
 */
export function outputChecksum(v: Float32Array, digits = 4): string {
  let h = 0x811c9dc5
  for (let i = 0; i < v.length; i++) {
    const s = v[i] === 0 ? '0' : v[i].toPrecision(digits)
    for (let j = 0; j < s.length; j++) {
      h ^= s.charCodeAt(j)
      h = Math.imul(h, 0x01000193)
    }
  }
  return (h >>> 0).toString(16).padStart(8, '0')
}
