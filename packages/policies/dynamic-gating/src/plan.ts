/** The plan type this package returns: core's DispatchPlan plus the exchange and memory model. */
import type { DispatchPlan } from '@moe-route/core'

/**
 * The expert-parallel exchange a plan implies, dispatch direction (the combine sends the
 * transpose back). Matrices are `devices × devices`, row = source device, column = destination.
 * Dynamic gating runs two collectives when `devices > 1`: an all-to-all of per-expert counts,
 * then a variable-size all-to-all of the token rows. Static gating runs one fixed-size
 * all-to-all of every buffer slot, padding included.
 */
export interface ExchangeModel {
  readonly devices: number
  /** Collectives per dispatch: 0 on one device, 2 for dynamic (sizes, payload), 1 for static. */
  readonly collectives: number
  /** Counts sent in the size exchange (one per expert hosted by the destination); diagonal 0. */
  readonly sizeMessages: Int32Array
  /** Bytes of the size exchange (`sizeMessages × countBytes`); diagonal 0. */
  readonly sizeBytes: Float64Array
  /** Rows of the payload exchange; the diagonal is what stays on its device. */
  readonly payloadRows: Int32Array
  /** Bytes of the payload exchange (`payloadRows × bytesPerToken`). */
  readonly payloadBytes: Float64Array
  /** Σ size bytes between distinct devices. */
  readonly sizeBytesCrossDevice: number
  /** Σ payload bytes between distinct devices (equals `traffic.bytesCrossDevice`). */
  readonly payloadBytesCrossDevice: number
}

/** Memory facts of a plan that do not depend on the element type. */
export interface PlanMemory {
  /** Bytes of the index arrays the plan itself holds (rowToken, rowWeight, offsets, counts). */
  readonly indexBytes: number
  /**
   * Elements of the dense dispatch tensors static gating materialises in GShard/fairseq:
   * `S × E × capacity` per source device (the paper's `(E, S, S·C)` mask), 0 for dynamic.
   */
  readonly maskElements: number
  /** Bytes of the gathered expert inputs (`rows × bytesPerToken`), padding included. */
  readonly dispatchBufferBytes: number
}

/**
 * A `DispatchPlan` (core) from the `dynamic-gating` dispatcher. Every field of core's plan
 * keeps its meaning; static plans pad each expert group to `capacity` rows (one segment of
 * `capacityPerSource` rows per source device, real rows first, then padding rows with token -1
 * and weight 0).
 */
export interface DynamicGatingPlan extends DispatchPlan {
  readonly mode: 'dynamic' | 'static'
  /** Name of the dispatcher that made the plan. */
  readonly dispatcher: 'dynamic-gating'
  /** Pairs that reached the dispatcher (kept + dropped by it). */
  readonly pairs: number
  /** Static: capacity of each source device's segment; null for dynamic. */
  readonly capacityPerSource: number | null
  /** Static: segments per expert group (source devices); 1 for dynamic. */
  readonly segments: number
  readonly exchange: ExchangeModel
  readonly memory: PlanMemory
}

/** True if the plan carries the extended fields of this package. */
export function isDynamicGatingPlan(plan: DispatchPlan): plan is DynamicGatingPlan {
  return (plan as Partial<DynamicGatingPlan>).dispatcher === 'dynamic-gating'
}
