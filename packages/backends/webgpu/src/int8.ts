/**
 * The int8 W8A8 scheme of the prefill experts, on the CPU: the quantization rule the GPU
 * kernels implement bit for bit, and a reference forward that does exactly the quantized math.
 *
 * Scheme (symmetric, no zero points):
 * - a row `v` (a weight matrix's output channel, or one activation row) with m = max|v|
 *   gets the scale s = fl32(m · fl32(1/127)) and q[i] = roundHalfEven(127 · v[i] / m),
 *   computed EXACTLY (the real quotient, not an f32 division), so |q| ≤ 127 and the GPU's
 *   integer implementation of the same rule gives identical bytes;
 * - a row whose m is below 2^-96 (≈ 1.3e-29), or not finite (Inf/NaN anywhere), quantizes to
 *   all zeros with scale 0 (it contributes exactly 0);
 * - weights per output channel (row n of `nn.Linear`'s N×K matrix), activations per row
 *   (dynamic, per token and expert row);
 * - GEMM: acc = Σ_k qa[k]·qw[k] in int32 (exact), then y = fl32(fl32(f32(acc) · s_a) · s_w).
 */
import { ErrorCodes, MoeError, assertLength, type DispatchPlan, type LayerWeights, type ModelShape } from '@moe-route/core'

/** fl32(1/127): the scale is m times this (a correctly rounded f32 product on CPU and GPU). */
export const INV127 = Math.fround(1 / 127)

/** Rows whose max |v| is below this quantize to zero (scale 0). */
export const INT8_MIN_ROW_MAX = 2 ** -96

/** A row-major matrix quantized per row. */
export interface Int8Rows {
  /** rows × cols int8, row-major. */
  readonly q: Int8Array
  /** One scale per row (dequantized value = q · scale). */
  readonly scale: Float32Array
}

/** roundHalfEven(127·|a|/m) for 0 ≤ |a| ≤ m (exact: 127·|a| is exact in f64, and no quotient lands within 2^-33 of a half unless it is one). */
export function quantizeMagnitude(absA: number, m: number): number {
  const v = (127 * absA) / m
  const f = Math.floor(v)
  const frac = v - f
  const q = frac > 0.5 || (frac === 0.5 && (f & 1) === 1) ? f + 1 : f
  return Math.min(127, q)
}

/** Scale of a row with max |v| = m under the scheme (0 for a zero row). */
export function int8Scale(m: number): number {
  return Number.isFinite(m) && m >= INT8_MIN_ROW_MAX ? Math.fround(m * INV127) : 0
}

/**
 * Quantizes each row of a row-major `rows × cols` f32 matrix to int8 with its own scale
 * (the scheme of this module: exact round-half-even of 127·v/max|v|).
 * @example
 * const { q, scale } = quantizeRowsInt8(w, N, K) // w[n·K + k] ≈ q[n·K + k] · scale[n]
 */
export function quantizeRowsInt8(mat: Float32Array, rows: number, cols: number): Int8Rows {
  assertLength(mat, rows * cols, 'matrix')
  const q = new Int8Array(rows * cols)
  const scale = new Float32Array(rows)
  for (let r = 0; r < rows; r++) {
    const o = r * cols
    let m = 0
    let finite = true
    for (let c = 0; c < cols; c++) {
      const a = Math.abs(mat[o + c])
      if (!(a <= 3.4028234663852886e38)) finite = false
      else if (a > m) m = a
    }
    if (!finite || m < INT8_MIN_ROW_MAX) continue
    scale[r] = int8Scale(m)
    for (let c = 0; c < cols; c++) {
      const v = mat[o + c]
      const mag = quantizeMagnitude(Math.abs(v), m)
      q[o + c] = v < 0 ? -mag : mag
    }
  }
  return { q, scale }
}

/** One expert's weights quantized per output channel, in `nn.Linear` layout (N×K rows). */
export interface HostInt8Expert {
  /** I×H. */
  readonly gate: Int8Rows
  /** I×H. */
  readonly up: Int8Rows
  /** H×I. */
  readonly down: Int8Rows
}

/** A layer's expert weights quantized on the host (the router stays f32). */
export interface HostInt8Weights {
  readonly shape: ModelShape
  readonly router: Float32Array
  readonly experts: readonly HostInt8Expert[]
}

/** Quantizes every expert matrix per output channel (what `uploadInt8Weights` uploads, before transposing). */
export function quantizeLayerWeightsInt8(weights: LayerWeights): HostInt8Weights {
  const { hidden: H, intermediate: I, experts: E } = weights.shape
  if (weights.experts.length !== E) throw new MoeError(ErrorCodes.SHAPE_MISMATCH, `weights have ${weights.experts.length} experts, shape says ${E}`)
  return {
    shape: weights.shape,
    router: weights.router,
    experts: weights.experts.map((w) => ({
      gate: quantizeRowsInt8(w.gate, I, H),
      up: quantizeRowsInt8(w.up, I, H),
      down: quantizeRowsInt8(w.down, H, I),
    })),
  }
}

/**
 * Reference int8 GEMM with the kernels' epilogue: y[r, n] = fl32(fl32(f32(acc) · sa[r]) · sw[n]),
 * acc = Σ_k a[r, k] · w[n, k] exact. `a` is rows × K, `w` is N × K (`nn.Linear` layout).
 */
export function int8GemmRef(a: Int8Rows, rows: number, w: Int8Rows, N: number, K: number): Float32Array {
  const y = new Float32Array(rows * N)
  for (let r = 0; r < rows; r++) {
    const ao = r * K
    const sa = a.scale[r]
    for (let n = 0; n < N; n++) {
      const wo = n * K
      let acc = 0
      for (let k = 0; k < K; k++) acc += a.q[ao + k] * w.q[wo + k]
      y[r * N + n] = Math.fround(Math.fround(Math.fround(acc) * sa) * w.scale[n])
    }
  }
  return y
}

/** silu(g)·u as the kernels compute it (f32 result). */
export const siluMul = (g: number, u: number): number => Math.fround((g / (1 + Math.exp(-g))) * u)

/** True when `w` holds already-quantized experts ({@link HostInt8Weights}). */
export function isHostInt8Weights(w: LayerWeights | HostInt8Weights): w is HostInt8Weights {
  const first = w.experts[0] as unknown as Record<string, unknown> | undefined
  return first !== undefined && typeof first.gate === 'object' && first.gate !== null && 'q' in (first.gate as object)
}

/** Intermediates of {@link w8a8ExpertsForward} (rows in dispatch order). */
export interface W8A8Trace {
  /** Quantized gathered x (R×H) and its row scales. */
  readonly xq: Int8Rows
  /** act = silu(gate)·up, R×I f32. */
  readonly act: Float32Array
  /** Quantized act (R×I). */
  readonly actq: Int8Rows
  /** Expert outputs before the combine, R×H. */
  readonly y: Float32Array
}

/**
 * The grouped SwiGLU experts in W8A8, exactly as the int8 kernels compute them: rows of
 * expert e are plan.offsets[e]..offsets[e+1]; each row's x (token rowToken[r], or zeros for
 * padding) is quantized per row, gate/up int8 GEMMs with the dequant epilogue, act =
 * silu(g)·u, act quantized per row, the down int8 GEMM, then the weighted combine in token
 * order. Weights are quantized per output channel here unless already quantized.
 * @returns tokens × hidden output (and the per-row intermediates when `trace` is given).
 */
export function w8a8ExpertsForward(x: Float32Array, plan: DispatchPlan, weights: LayerWeights | HostInt8Weights, trace?: { out?: W8A8Trace }): Float32Array {
  const { hidden: H, intermediate: I, experts: E } = weights.shape
  const T = plan.tokens
  assertLength(x, T * H, 'hidden states')
  if (plan.experts !== E) throw new MoeError(ErrorCodes.SHAPE_MISMATCH, `plan has ${plan.experts} experts, weights have ${E}`)
  const qw = isHostInt8Weights(weights) ? weights : quantizeLayerWeightsInt8(weights)
  const R = plan.offsets[E]
  const xs = new Float32Array(R * H)
  for (let r = 0; r < R; r++) {
    const t = plan.rowToken[r]
    if (t >= 0) xs.set(x.subarray(t * H, (t + 1) * H), r * H)
  }
  const xq = quantizeRowsInt8(xs, R, H)
  const act = new Float32Array(R * I)
  const y = new Float32Array(R * H)
  for (let e = 0; e < E; e++) {
    const start = plan.offsets[e]
    const rows = plan.offsets[e + 1] - start
    if (rows === 0) continue
    const a: Int8Rows = { q: xq.q.subarray(start * H, (start + rows) * H), scale: xq.scale.subarray(start, start + rows) }
    const g = int8GemmRef(a, rows, qw.experts[e].gate, I, H)
    const u = int8GemmRef(a, rows, qw.experts[e].up, I, H)
    for (let i = 0; i < rows * I; i++) act[start * I + i] = siluMul(g[i], u[i])
  }
  const actq = quantizeRowsInt8(act, R, I)
  for (let e = 0; e < E; e++) {
    const start = plan.offsets[e]
    const rows = plan.offsets[e + 1] - start
    if (rows === 0) continue
    const a: Int8Rows = { q: actq.q.subarray(start * I, (start + rows) * I), scale: actq.scale.subarray(start, start + rows) }
    y.set(int8GemmRef(a, rows, qw.experts[e].down, H, I), start * H)
  }
  const out = new Float32Array(T * H)
  for (let r = 0; r < R; r++) {
    const t = plan.rowToken[r]
    if (t < 0) continue
    const w = plan.rowWeight[r]
    for (let h = 0; h < H; h++) out[t * H + h] += w * y[r * H + h]
  }
  if (trace) trace.out = { xq, act, actq, y }
  return out
}
