/** Per-batch numbers of a dispatch plan: slots, padding, drops, bytes, memory, kernel time. */
import { ErrorCodes, MoeError, type DispatchPlan } from '@moe-route/core'
import { isDynamicGatingPlan } from './plan.js'

/** What {@link dispatchStats} needs besides the plan. */
export interface DispatchStatsOptions {
  /** Hidden size H. */
  readonly hidden: number
  /** Bytes per activation element (2 for fp16/bf16, 4 for f32). */
  readonly bytesPerElement: number
  /** Expert intermediate size I: adds the SwiGLU activation memory and the FLOPs. */
  readonly intermediate?: number
  /** Kernel times (ms) a backend reported for this plan (`ExpertsResult.kernels`). */
  readonly kernels?: Readonly<Record<string, number>>
}

/** Activation memory of one dispatch, in bytes. */
export interface DispatchMemory {
  /** Gathered expert inputs: slots × H (padding slots included). */
  readonly dispatchBufferBytes: number
  /** Expert outputs before the combine: slots × H. */
  readonly expertOutputBytes: number
  /** SwiGLU activations silu(gate·x) ⊙ (up·x): slots × I (0 when `intermediate` is not given). */
  readonly intermediateBytes: number
  /**
   * Dense dispatch tensors of GShard/fairseq static gating, `S × E × capacity` per source
   * device, as combine weights (`bytesPerElement`) plus a bool dispatch mask (1 byte);
   * 0 for dynamic gating, which needs only the index arrays.
   */
  readonly dispatchMaskBytes: number
  /** Index arrays of the plan (row → token, row weight, offsets, counts). */
  readonly indexBytes: number
  /** Sum of the above. */
  readonly totalBytes: number
}

/** What one batch's dispatch costs. */
export interface DispatchStats {
  readonly mode: string
  readonly tokens: number
  readonly experts: number
  /** Rows per expert group (static), or null for exact sizes. */
  readonly capacity: number | null
  /** Pairs computed for real (rows with a token). */
  readonly pairsKept: number
  /** Rows the experts compute: real rows plus padding. */
  readonly slotsComputed: number
  /** Placeholder rows computed (and sent) on top of the real ones. */
  readonly paddingSlots: number
  /**
   * Slots computed ÷ pairs asked for (kept + dropped by the dispatcher): the paper's waste
   * factor (`E·C/k` for static gating with a fraction-of-batch capacity; 1 for dynamic gating).
   */
  readonly wasteFactor: number
  /** Pairs the dispatcher dropped. */
  readonly droppedPairs: number
  /** Tokens that lost at least one pair to the dispatcher. */
  readonly tokensWithDrop: number
  /** Tokens that lost every pair they had (their MoE output is 0). */
  readonly tokensFullyDropped: number
  /** Payload bytes between distinct devices (dispatch direction). */
  readonly bytesCrossDevice: number
  /** Size-exchange bytes between distinct devices (dynamic gating under expert parallelism). */
  readonly sizeBytesCrossDevice: number
  /** Collectives per dispatch (0 on one device). */
  readonly collectives: number
  readonly memory: DispatchMemory
  /** Expert FLOPs (3 matmuls of 2·H·I per slot); present when `intermediate` is given. */
  readonly flops?: number
  /** Σ kernel times the backend reported, ms; present when `kernels` is given. */
  readonly kernelMs?: number
}

/**
 * Computes {@link DispatchStats} for any core plan (this package's plans carry the exchange
 * and mask sizes; for other plans they are derived from `capacity` and `traffic`).
 * @example
 * const s = dispatchStats(plan, { hidden: 1024, bytesPerElement: 2, intermediate: 4096 })
 * console.log(s.wasteFactor, s.memory.totalBytes)
 */
export function dispatchStats(plan: DispatchPlan, options: DispatchStatsOptions): DispatchStats {
  const { hidden, bytesPerElement, intermediate, kernels } = options
  for (const [k, v] of Object.entries({ hidden, bytesPerElement, intermediate: intermediate ?? 1 })) {
    if (!(Number.isFinite(v) && v > 0)) throw new MoeError(ErrorCodes.INPUT_INVALID, `${k} must be a positive number, got ${v}`)
  }
  const slots = plan.rowToken.length
  let kept = 0
  for (let i = 0; i < plan.counts.length; i++) kept += plan.counts[i]
  const ext = isDynamicGatingPlan(plan) ? plan : null
  const pairs = ext ? ext.pairs : kept + plan.dropped.length
  const maskElements = ext ? ext.memory.maskElements : plan.capacity === null ? 0 : plan.tokens * plan.experts * plan.capacity
  const indexBytes = ext
    ? ext.memory.indexBytes
    : plan.rowToken.byteLength + plan.rowWeight.byteLength + plan.offsets.byteLength + plan.counts.byteLength
  const dispatchBufferBytes = slots * hidden * bytesPerElement
  const intermediateBytes = intermediate ? slots * intermediate * bytesPerElement : 0
  const dispatchMaskBytes = maskElements * (bytesPerElement + 1)
  const memory: DispatchMemory = {
    dispatchBufferBytes,
    expertOutputBytes: dispatchBufferBytes,
    intermediateBytes,
    dispatchMaskBytes,
    indexBytes,
    totalBytes: 2 * dispatchBufferBytes + intermediateBytes + dispatchMaskBytes + indexBytes,
  }
  const { withDrop, fullyDropped } = droppedTokens(plan)
  const stats: DispatchStats = {
    mode: plan.mode,
    tokens: plan.tokens,
    experts: plan.experts,
    capacity: plan.capacity,
    pairsKept: kept,
    slotsComputed: slots,
    paddingSlots: slots - kept,
    wasteFactor: pairs === 0 ? (slots === 0 ? 1 : Infinity) : slots / pairs,
    droppedPairs: plan.dropped.length,
    tokensWithDrop: withDrop,
    tokensFullyDropped: fullyDropped,
    bytesCrossDevice: ext ? ext.exchange.payloadBytesCrossDevice : plan.traffic.bytesCrossDevice,
    sizeBytesCrossDevice: ext ? ext.exchange.sizeBytesCrossDevice : 0,
    collectives: ext ? ext.exchange.collectives : plan.traffic.devices > 1 ? 1 : 0,
    memory,
  }
  return {
    ...stats,
    ...(intermediate ? { flops: slots * 6 * hidden * intermediate } : {}),
    ...(kernels ? { kernelMs: Object.values(kernels).reduce((a, b) => a + b, 0) } : {}),
  }
}

function droppedTokens(plan: DispatchPlan): { withDrop: number; fullyDropped: number } {
  if (plan.dropped.length === 0) return { withDrop: 0, fullyDropped: 0 }
  const hasRow = new Uint8Array(plan.tokens)
  for (let i = 0; i < plan.rowToken.length; i++) if (plan.rowToken[i] >= 0) hasRow[plan.rowToken[i]] = 1
  const seen = new Uint8Array(plan.tokens)
  let withDrop = 0
  let fullyDropped = 0
  for (const d of plan.dropped) {
    if (seen[d.token]) continue
    seen[d.token] = 1
    withDrop++
    if (!hasRow[d.token]) fullyDropped++
  }
  return { withDrop, fullyDropped }
}
