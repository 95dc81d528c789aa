/**
 * All-to-all link model: each device sends and receives over its own link of `bandwidth`
 * bytes/s per direction, after a fixed `latencyMs`. One all-to-all takes
 * latency + max over devices of max(bytes sent, bytes received) / bandwidth.
 * {@link fitLinkModel} fits the two numbers to measured all-to-all times (a
 * {@link LinkCalibration}, shipped inside a cost-model calibration's `link`).
 */
import { ErrorCodes, MoeError } from '@moe-route/core'

/** A device interconnect. */
export interface LinkModel {
  readonly name: string
  /** Bytes per second per device per direction. */
  readonly bandwidth: number
  /** Fixed cost of one all-to-all, milliseconds. */
  readonly latencyMs: number
}

/**
 * NVLink 4 on H100 SXM: 900 GB/s bidirectional = 450 GB/s per direction per GPU (NVIDIA's
 * nominal figure, not measured here); 10 µs per all-to-all (an assumption of the order of
 * NCCL's small-message latency within a node).
 */
export const NVLINK4_H100: LinkModel = { name: 'NVLink 4 (H100 SXM, nominal 450 GB/s per direction)', bandwidth: 450e9, latencyMs: 0.01 }

/** Milliseconds of one all-to-all given per-device bytes sent and received. */
export function allToAllMs(link: LinkModel, sent: ArrayLike<number>, received: ArrayLike<number>): number {
  let worst = 0
  let any = false
  for (let d = 0; d < sent.length; d++) {
    const b = Math.max(sent[d], received[d])
    if (b > 0) any = true
    if (b > worst) worst = b
  }
  return any ? link.latencyMs + (worst / link.bandwidth) * 1e3 : 0
}

/** Throws MOE_ROUTE_ERR_INPUT_INVALID unless bandwidth > 0 and latency ≥ 0 (and so for each per-device-count fit of a calibration). */
export function checkLink(link: LinkModel | LinkCalibration): void {
  if (!link || !(link.bandwidth > 0) || !(link.latencyMs >= 0)) {
    throw new MoeError(ErrorCodes.INPUT_INVALID, `link model needs bandwidth > 0 and latencyMs ≥ 0, got ${link?.bandwidth}, ${link?.latencyMs}`, { path: '/link' })
  }
  const per = (link as LinkCalibration).perDevices
  if (per === undefined) return
  if (!Array.isArray(per)) throw new MoeError(ErrorCodes.INPUT_INVALID, 'link perDevices must be a list', { path: '/link/perDevices' })
  per.forEach((f, i) => {
    if (!f || !Number.isInteger(f.devices) || f.devices < 2 || !(f.bandwidth > 0) || !(f.latencyMs >= 0)) {
      throw new MoeError(ErrorCodes.INPUT_INVALID, `link perDevices[${i}] needs an integer devices ≥ 2, bandwidth > 0 and latencyMs ≥ 0, got ${JSON.stringify(f)}`, { path: `/link/perDevices/${i}` })
    }
  })
}

/**
 * One measured communication time: `calls` all-to-alls on `devices` devices that moved `bytes`
 * over the busiest device — Σ over the calls of max over devices of max(sent, received), the
 * quantity {@link allToAllMs} divides by the bandwidth.
 */
export interface LinkCalibrationPoint {
  readonly devices: number
  readonly calls: number
  readonly bytes: number
  readonly ms: number
  /** What the fitted link predicts for it (filled in by {@link fitLinkModel}). */
  readonly predictedMs?: number
  /** Free-form label (configuration, batch) for reports. */
  readonly label?: string
}

/** A link fitted to one device count (see {@link LinkCalibration.perDevices}). */
export interface LinkFit {
  readonly devices: number
  readonly bandwidth: number
  readonly latencyMs: number
}

/**
 * A link model fitted to measured all-to-all times (JSON, inside a cost-model calibration's
 * `link`). It is a {@link LinkModel} (the fit over every device count); `perDevices` holds fits
 * to each device count alone, which {@link linkModelFor} prefers.
 */
export interface LinkCalibration extends LinkModel {
  /** How the points were measured (hardware, library, what the time includes). */
  readonly provenance?: string
  readonly perDevices?: readonly LinkFit[]
  readonly points?: readonly LinkCalibrationPoint[]
}

/** Milliseconds a link predicts for a point: calls × latency + bytes / bandwidth. */
export function predictLinkMs(link: Pick<LinkModel, 'bandwidth' | 'latencyMs'>, p: Pick<LinkCalibrationPoint, 'calls' | 'bytes'>): number {
  return p.calls * link.latencyMs + (p.bytes / link.bandwidth) * 1e3
}

/**
 * The link model to simulate `devices` devices with: the calibration's fit to that device
 * count when it has one, else its overall fit (a plain LinkModel is returned as is).
 */
export function linkModelFor(link: LinkModel | LinkCalibration, devices: number): LinkModel {
  checkLink(link)
  const f = (link as LinkCalibration).perDevices?.find((p) => p.devices === devices)
  return f ? { name: `${link.name} (fit to ${devices} devices)`, bandwidth: f.bandwidth, latencyMs: f.latencyMs } : link
}

/**
 * Fits bandwidth and per-all-to-all latency to measured times by least squares on relative
 * error (the latency in closed form for each bandwidth of a log grid from 1 GB/s to 10 TB/s,
 * clipped at 0), overall and, with `perDevices`, for each device count that has points with
 * different byte counts. Points carry their prediction in the result.
 * @example
 * const link = fitLinkModel({ name: 'NCCL all_to_all_single, 8× H100 NVLink 4', provenance: 'measured …', points })
 * createSimulator({ model, placement, link: linkModelFor(link, 8) })
 */
export function fitLinkModel(input: { name: string; provenance?: string; points: readonly LinkCalibrationPoint[]; perDevices?: boolean }): LinkCalibration {
  if (input.points.length === 0) throw new MoeError(ErrorCodes.INPUT_INVALID, 'a link fit needs at least one measured point', { path: '/points' })
  for (const p of input.points) {
    if (!(p.ms > 0) || !(p.bytes >= 0) || !(p.calls >= 1) || !Number.isInteger(p.devices) || p.devices < 2) {
      throw new MoeError(ErrorCodes.INPUT_INVALID, `link point ${JSON.stringify(p)} needs devices ≥ 2, calls ≥ 1, bytes ≥ 0 and ms > 0`, { path: '/points' })
    }
  }
  const all = fitPoints(input.points)
  const perDevices: LinkFit[] = []
  if (input.perDevices) {
    for (const devices of [...new Set(input.points.map((p) => p.devices))].sort((a, b) => a - b)) {
      const pts = input.points.filter((p) => p.devices === devices)
      if (new Set(pts.map((p) => p.bytes / p.calls)).size < 2) continue // one byte count: bandwidth and latency are not separable
      perDevices.push({ devices, ...fitPoints(pts) })
    }
  }
  const points = input.points.map((p) => {
    const f = perDevices.find((d) => d.devices === p.devices) ?? all
    return { ...p, predictedMs: Number(predictLinkMs(f, p).toPrecision(4)) }
  })
  return {
    name: input.name,
    ...(input.provenance ? { provenance: input.provenance } : {}),
    ...all,
    ...(perDevices.length ? { perDevices } : {}),
    points,
  }
}

function fitPoints(points: readonly LinkCalibrationPoint[]): { bandwidth: number; latencyMs: number } {
  let best = { bandwidth: 1e9, latencyMs: 0, err: Infinity }
  for (let i = 0; i <= 4000; i++) {
    const bandwidth = 1e9 * Math.pow(1e4, i / 4000)
    // Optimal latency for this bandwidth (weighted least squares on relative error, ≥ 0).
    let num = 0
    let den = 0
    for (const p of points) {
      const w = 1 / (p.ms * p.ms)
      num += w * p.calls * (p.ms - (p.bytes / bandwidth) * 1e3)
      den += w * p.calls * p.calls
    }
    const latencyMs = Math.max(0, num / den)
    let err = 0
    for (const p of points) err += ((predictLinkMs({ bandwidth, latencyMs }, p) - p.ms) / p.ms) ** 2
    if (err < best.err) best = { bandwidth, latencyMs, err }
  }
  return { bandwidth: Number(best.bandwidth.toPrecision(4)), latencyMs: Number(best.latencyMs.toPrecision(4)) }
}
