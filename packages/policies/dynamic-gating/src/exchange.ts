/** Device bookkeeping shared by both modes: checks and the exchange matrices. */
import { ErrorCodes, MoeError, type DispatchContext, type DispatchTraffic, type Routing } from '@moe-route/core'
import type { ExchangeModel } from './plan.js'

/** Throws when the routing and the placement disagree or a source device is out of range. */
export function checkDispatchInput(routing: Routing, ctx: DispatchContext): void {
  const { placement } = ctx
  if (placement.experts !== routing.experts) {
    throw new MoeError(ErrorCodes.SHAPE_MISMATCH, `routing has ${routing.experts} experts, the placement ${placement.experts}`, {
      plugin: 'dynamic-gating',
    })
  }
  if (!(ctx.bytesPerToken >= 0)) {
    throw new MoeError(ErrorCodes.INPUT_INVALID, `bytesPerToken must be ≥ 0, got ${ctx.bytesPerToken}`, { plugin: 'dynamic-gating' })
  }
  const src = routing.sourceDevice
  if (!src) return
  if (src.length !== routing.tokens) {
    throw new MoeError(ErrorCodes.SHAPE_MISMATCH, `sourceDevice has ${src.length} entries, expected ${routing.tokens}`, { plugin: 'dynamic-gating' })
  }
  for (let t = 0; t < src.length; t++) {
    if (src[t] < 0 || src[t] >= placement.devices) {
      throw new MoeError(ErrorCodes.INPUT_INVALID, `token ${t} is on device ${src[t]}, outside 0..${placement.devices - 1}`, {
        plugin: 'dynamic-gating',
        record: t,
      })
    }
  }
}

/** Experts hosted by each device (any replica), length D. */
export function expertsPerDevice(replicas: readonly (readonly number[])[], devices: number): Int32Array {
  const out = new Int32Array(devices)
  for (const reps of replicas) for (const d of new Set(reps)) out[d]++
  return out
}

/**
 * Builds the exchange model and core's traffic record from a payload row matrix.
 * `sized` adds the size all-to-all (dynamic gating); it only exists with more than one device.
 */
export function buildExchange(
  payloadRows: Int32Array,
  devices: number,
  bytesPerToken: number,
  sized: { readonly hostedExperts: Int32Array; readonly countBytes: number } | null,
): { exchange: ExchangeModel; traffic: DispatchTraffic } {
  const D = devices
  const sizeMessages = new Int32Array(D * D)
  const sizeBytes = new Float64Array(D * D)
  const payloadBytes = new Float64Array(D * D)
  let sizeCross = 0
  let payloadCross = 0
  for (let s = 0; s < D; s++) {
    for (let d = 0; d < D; d++) {
      const i = s * D + d
      payloadBytes[i] = payloadRows[i] * bytesPerToken
      if (s === d) continue
      payloadCross += payloadBytes[i]
      if (sized) {
        sizeMessages[i] = sized.hostedExperts[d]
        sizeBytes[i] = sizeMessages[i] * sized.countBytes
        sizeCross += sizeBytes[i]
      }
    }
  }
  const collectives = D === 1 ? 0 : sized ? 2 : 1
  return {
    exchange: {
      devices: D,
      collectives,
      sizeMessages,
      sizeBytes,
      payloadRows,
      payloadBytes,
      sizeBytesCrossDevice: sizeCross,
      payloadBytesCrossDevice: payloadCross,
    },
    traffic: { devices: D, sendRows: payloadRows, bytesCrossDevice: payloadCross },
  }
}

/** Bytes of a plan's index arrays. */
export function indexBytesOf(arrays: readonly { readonly byteLength: number }[]): number {
  let n = 0
  for (const a of arrays) n += a.byteLength
  return n
}
