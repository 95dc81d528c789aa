/**
 * Static gating (SPEC B.2), the GShard/fairseq baseline dynamic gating replaces: every expert
 * gets a fixed buffer of `capacity` slots per source device; pairs take the first free slot,
 * overflow pairs are dropped, empty slots are zero placeholders that are still sent and computed.
 */
import { ErrorCodes, MoeError, expertCapacity, type DispatchContext, type DroppedPair, type Routing } from '@moe-route/core'
import { buildExchange, checkDispatchInput, indexBytesOf } from './exchange.js'
import type { CapacityRule } from './dynamic-gating.schema.js'
import type { DynamicGatingPlan } from './plan.js'

/** Options of {@link staticDispatch} (a subset of the plugin's options; same defaults). */
export interface StaticDispatchOptions {
  /** Capacity factor C (default 1): see {@link staticCapacity}. */
  readonly capacityFactor?: number
  /** fairseq's eval token fraction; wins over `capacityFactor` when set. */
  readonly capacityFraction?: number | null
  /** `batch-fraction` (default): `ceil(C·S)`; `expert-share`: `ceil(C·k·S/E)`. */
  readonly capacityRule?: CapacityRule
  /** `token` (default) or `choice` (all first choices before any second choice, like fairseq top2gate). */
  readonly priority?: 'token' | 'choice'
  /** Name recorded in dropped pairs (default `dynamic-gating`). */
  readonly policyName?: string
}

/**
 * Per-expert slots of one source device's buffer for S tokens on that device:
 * `ceil(fraction·S)` when `capacityFraction` is set (fairseq eval), else `ceil(C·S)`
 * (`batch-fraction`, the paper's `C·S`) or `ceil(C·k·S/E)` (`expert-share`, GShard/Switch).
 * @example
 * staticCapacity(1024, { capacityFraction: 0.05 }, 2, 512) // 52
 */
export function staticCapacity(tokens: number, options: StaticDispatchOptions, topK: number, experts: number): number {
  const fraction = options.capacityFraction
  const factor = options.capacityFactor ?? 1
  const bad = (what: string, v: unknown) =>
    new MoeError(ErrorCodes.INPUT_INVALID, `${what} must be a positive number, got ${String(v)}`, { plugin: 'dynamic-gating', path: `/dispatcher/options/${what}` })
  if (fraction !== null && fraction !== undefined) {
    if (!(fraction > 0) || !Number.isFinite(fraction)) throw bad('capacityFraction', fraction)
    return snapCeil(fraction * tokens)
  }
  if (!(factor > 0) || !Number.isFinite(factor)) throw bad('capacityFactor', factor)
  if ((options.capacityRule ?? 'batch-fraction') === 'expert-share') return expertCapacity(factor, tokens, topK, experts, 'ceil')
  return snapCeil(factor * tokens)
}

/** ceil that ignores float noise (0.05·1000 = 50.00000000000001 must give 50). */
function snapCeil(x: number): number {
  const r = Math.round(x)
  return Math.abs(x - r) < 1e-9 ? r : Math.ceil(x)
}

/**
 * Pads every expert group to `segments × capacityPerSource` rows, where a segment is the
 * buffer one source device sends (one segment without `routing.sourceDevice`). All segments
 * use the capacity of the busiest source device: the all-to-all has a fixed shape.
 * Overflow pairs are dropped with reason `static-overflow`, in the `priority` order.
 * Traffic counts every slot, padding included (E · capacity slots per source device).
 * @example
 * const plan = staticDispatch(routing, ctx, { capacityFraction: 0.05 })
 * plan.paddingRows // placeholders computed and sent on top of the real rows
 */
export function staticDispatch(routing: Routing, ctx: DispatchContext, options: StaticDispatchOptions = {}): DynamicGatingPlan {
  checkDispatchInput(routing, ctx)
  const { tokens, experts, slots, expertIds, weights, sourceDevice, topK } = routing
  const { placement, bytesPerToken } = ctx
  const D = placement.devices
  const segments = sourceDevice ? D : 1
  const perSource = new Int32Array(segments)
  for (let t = 0; t < tokens; t++) perSource[sourceDevice ? sourceDevice[t] : 0]++
  let busiest = 0
  for (const n of perSource) busiest = Math.max(busiest, n)
  const cap = staticCapacity(busiest, options, topK, experts)
  const group = segments * cap
  const rowsTotal = experts * group
  const offsets = new Int32Array(experts + 1)
  for (let e = 0; e <= experts; e++) offsets[e] = e * group
  const counts = new Int32Array(experts)
  const rowToken = new Int32Array(rowsTotal).fill(-1)
  const rowWeight = new Float32Array(rowsTotal)
  const fill = new Int32Array(experts * segments)
  const dropped: DroppedPair[] = []
  const policy = options.policyName ?? 'dynamic-gating'
  let pairs = 0
  const place = (t: number, j: number) => {
    const e = expertIds[t * slots + j]
    if (e < 0) return
    pairs++
    const seg = sourceDevice ? sourceDevice[t] : 0
    const f = e * segments + seg
    const w = weights[t * slots + j]
    if (fill[f] >= cap) {
      dropped.push({ token: t, expert: e, weight: w, reason: 'static-overflow', policy })
      return
    }
    const r = offsets[e] + seg * cap + fill[f]++
    rowToken[r] = t
    rowWeight[r] = w
    counts[e]++
  }
  if ((options.priority ?? 'token') === 'token') {
    for (let t = 0; t < tokens; t++) for (let j = 0; j < slots; j++) place(t, j)
  } else {
    for (let j = 0; j < slots; j++) for (let t = 0; t < tokens; t++) place(t, j)
    // dropped pairs are reported in token order whatever the fill order
    dropped.sort((a, b) => a.token - b.token || a.expert - b.expert)
  }
  // Every segment ships its whole buffer of every expert to the expert's primary device.
  const payloadRows = new Int32Array(D * D)
  for (let seg = 0; seg < segments; seg++) {
    for (let e = 0; e < experts; e++) payloadRows[seg * D + placement.replicas[e][0]] += cap
  }
  const { exchange, traffic } = buildExchange(payloadRows, D, bytesPerToken, null)
  const kept = pairs - dropped.length
  return {
    mode: 'static',
    dispatcher: 'dynamic-gating',
    tokens,
    experts,
    offsets,
    counts,
    rowToken,
    rowWeight,
    capacity: group,
    capacityPerSource: cap,
    segments,
    paddingRows: rowsTotal - kept,
    pairs,
    dropped,
    traffic,
    exchange,
    memory: {
      indexBytes: indexBytesOf([rowToken, rowWeight, offsets, counts]),
      maskElements: tokens * experts * cap,
      dispatchBufferBytes: rowsTotal * bytesPerToken,
    },
  }
}
