/**
 * Expert compute cost: milliseconds for one device to run its experts on their rows. A
 * roofline per expert — the larger of reading its weights (memory-bound) and its GEMM
 * FLOPs (compute-bound) — plus a fixed overhead per device per layer call. Calibrated from
 * measured kernel times of a backend (see {@link fitCalibration}); the calibration is JSON.
 */
import { ErrorCodes, MoeError, type ModelShape } from '@moe-route/core'
import { checkLink, type LinkCalibration } from './link-model.js'

/** One measured layer call: T tokens, how many experts were active, and its time. */
export interface CalibrationPoint {
  readonly tokens: number
  readonly activeExperts: number
  readonly ms: number
  /**
   * Rows of each active expert (replica) when they are known — one device's share of an
   * expert-parallel layer, say. Without it the call's T·k rows are taken as spread evenly over
   * `activeExperts`; with it the prediction sums the roofline of each entry (zeros are skipped).
   */
  readonly expertRows?: readonly number[]
}

/** A cost-model calibration, as saved to JSON. */
export interface Calibration {
  readonly format: 'moe-route.cost-model/v1'
  /** Where it was measured (GPU, software, kernel). */
  readonly device: string
  /** How the numbers were obtained, honestly: measured here, derived from elsewhere, … */
  readonly provenance: string
  /** Shape the points were measured at. */
  readonly shape: { readonly hidden: number; readonly intermediate: number; readonly topK: number }
  /** Bytes per weight element (2 for bf16/f16, 1 for int8). */
  readonly bytesPerWeight: number
  /** Bytes per second for streaming weights. */
  readonly weightBandwidth: number
  /** Effective FLOP/s of the expert GEMMs (SwiGLU: 6·H·I FLOPs per row). */
  readonly flops: number
  /** Fixed milliseconds per device per layer call (launches, synchronisation). */
  readonly callOverheadMs: number
  /** The measurements it was fitted to, with the model's prediction for each. */
  readonly points: readonly (CalibrationPoint & { readonly predictedMs?: number })[]
  /**
   * The interconnect measured with the same runs (optional; calibrations without it leave the
   * simulator's link model to the caller). A {@link LinkCalibration} is a `LinkModel`: pass it
   * as `link`, or {@link linkModelFor} it for one device count.
   */
  readonly link?: LinkCalibration
}

/** Turns rows per expert into device milliseconds. */
export interface CostModel {
  readonly name: string
  /** Milliseconds of one expert with `rows` rows at `shape` (0 rows → 0). */
  expertMs(rows: number, shape: ModelShape): number
  /** Fixed milliseconds of a device that runs at least one expert in the layer. */
  readonly callOverheadMs: number
}

/** Weight bytes and FLOPs per row of one SwiGLU expert. */
export function expertSize(shape: Pick<ModelShape, 'hidden' | 'intermediate'>, bytesPerWeight: number): { bytes: number; flopsPerRow: number } {
  return { bytes: 3 * shape.hidden * shape.intermediate * bytesPerWeight, flopsPerRow: 6 * shape.hidden * shape.intermediate }
}

/** A cost model from a calibration (shapes other than the calibrated one scale by H·I). */
export function costModelFromCalibration(cal: Calibration): CostModel {
  checkCalibration(cal)
  return {
    name: cal.device,
    callOverheadMs: cal.callOverheadMs,
    expertMs(rows, shape) {
      if (rows <= 0) return 0
      const { bytes, flopsPerRow } = expertSize(shape, cal.bytesPerWeight)
      return Math.max((bytes / cal.weightBandwidth) * 1e3, ((rows * flopsPerRow) / cal.flops) * 1e3)
    },
  }
}

/**
 * Predicted ms of a layer call: with `expertRows`, the roofline of each listed expert; else T
 * tokens spread evenly over `activeExperts`.
 */
export function predictCall(
  cal: Omit<Calibration, 'points' | 'format' | 'device' | 'provenance' | 'link'>,
  p: Pick<CalibrationPoint, 'tokens' | 'activeExperts' | 'expertRows'>,
): number {
  const { bytes, flopsPerRow } = expertSize(cal.shape, cal.bytesPerWeight)
  const one = (rows: number) => Math.max((bytes / cal.weightBandwidth) * 1e3, ((rows * flopsPerRow) / cal.flops) * 1e3)
  if (p.expertRows) return cal.callOverheadMs + p.expertRows.reduce((s, rows) => (rows > 0 ? s + one(rows) : s), 0)
  return cal.callOverheadMs + p.activeExperts * one((p.tokens * cal.shape.topK) / p.activeExperts)
}

/**
 * Fits `flops` and `callOverheadMs` to measured layer calls (least squares on relative
 * error), with the weight bandwidth given (measure it with a copy or GEMV kernel).
 * @example
 * const cal = fitCalibration({ device: 'H100 WebGPU', provenance: 'measured 2026-…', shape, bytesPerWeight: 2, weightBandwidth: 2.9e12, points })
 * writeFileSync('calibration.json', JSON.stringify(cal, null, 2))
 */
export function fitCalibration(input: Omit<Calibration, 'format' | 'flops' | 'callOverheadMs'>): Calibration {
  if (input.points.length === 0) throw new MoeError(ErrorCodes.INPUT_INVALID, 'calibration needs at least one measured point', { path: '/points' })
  for (const p of input.points) {
    if (!(p.ms > 0) || !(p.tokens > 0) || !(p.activeExperts > 0)) throw new MoeError(ErrorCodes.INPUT_INVALID, `calibration point ${JSON.stringify(p)} needs positive tokens, activeExperts and ms`, { path: '/points' })
    if (p.expertRows !== undefined && (!Array.isArray(p.expertRows) || !p.expertRows.every((r) => Number.isFinite(r) && r >= 0) || !p.expertRows.some((r) => r > 0))) {
      throw new MoeError(ErrorCodes.INPUT_INVALID, `calibration point ${JSON.stringify(p)}: expertRows must list rows ≥ 0, at least one of them > 0`, { path: '/points' })
    }
  }
  if (input.link) checkLink(input.link)
  const base = { shape: input.shape, bytesPerWeight: input.bytesPerWeight, weightBandwidth: input.weightBandwidth }
  const fitFor = (flops: number) => {
    // Optimal overhead for these flops (weighted least squares, clipped at 0).
    const rest = input.points.map((p) => predictCall({ ...base, flops, callOverheadMs: 0 }, p))
    let num = 0
    let den = 0
    input.points.forEach((p, i) => {
      num += (p.ms - rest[i]) / (p.ms * p.ms)
      den += 1 / (p.ms * p.ms)
    })
    const overhead = Math.max(0, num / den)
    const err = input.points.reduce((s, p, i) => s + ((rest[i] + overhead - p.ms) / p.ms) ** 2, 0)
    return { overhead, err }
  }
  let best = { flops: 1e12, overhead: 0, err: Infinity }
  for (let i = 0; i <= 4000; i++) {
    const flops = 1e11 * Math.pow(1e5, i / 4000) // 1e11 … 1e16 FLOP/s
    const f = fitFor(flops)
    if (f.err < best.err) best = { flops, ...f }
  }
  const cal: Calibration = {
    format: 'moe-route.cost-model/v1',
    device: input.device,
    provenance: input.provenance,
    ...base,
    flops: Number(best.flops.toPrecision(4)),
    callOverheadMs: Number(best.overhead.toFixed(4)),
    points: [],
  }
  const points = input.points.map((p) => ({
    tokens: p.tokens,
    activeExperts: p.activeExperts,
    ms: p.ms,
    ...(p.expertRows ? { expertRows: [...p.expertRows] } : {}),
    predictedMs: Number(predictCall(cal, p).toFixed(3)),
  }))
  return { ...cal, points, ...(input.link ? { link: input.link } : {}) }
}

/** Throws MOE_ROUTE_ERR_INPUT_INVALID unless the calibration is well-formed. */
export function checkCalibration(cal: Calibration): void {
  if (!cal || cal.format !== 'moe-route.cost-model/v1') throw new MoeError(ErrorCodes.INPUT_INVALID, "not a cost-model calibration (format 'moe-route.cost-model/v1')")
  for (const k of ['bytesPerWeight', 'weightBandwidth', 'flops'] as const) {
    if (!(cal[k] > 0)) throw new MoeError(ErrorCodes.INPUT_INVALID, `calibration ${k} must be > 0, got ${cal[k]}`, { path: `/${k}` })
  }
  if (!(cal.callOverheadMs >= 0)) throw new MoeError(ErrorCodes.INPUT_INVALID, `calibration callOverheadMs must be ≥ 0`, { path: '/callOverheadMs' })
  if (cal.link !== undefined) checkLink(cal.link)
}
