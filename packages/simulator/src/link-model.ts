/**
 * All-to-all link model: each device sends and receives over its own link of `bandwidth`
 * bytes/s per direction, after a fixed `latencyMs`. One all-to-all takes
 * latency + max over devices of max(bytes sent, bytes received) / bandwidth.
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

/** Throws MOE_ROUTE_ERR_INPUT_INVALID unless bandwidth > 0 and latency ≥ 0. */
export function checkLink(link: LinkModel): void {
  if (!(link.bandwidth > 0) || !(link.latencyMs >= 0)) {
    throw new MoeError(ErrorCodes.INPUT_INVALID, `link model needs bandwidth > 0 and latencyMs ≥ 0, got ${link.bandwidth}, ${link.latencyMs}`, { path: '/link' })
  }
}
