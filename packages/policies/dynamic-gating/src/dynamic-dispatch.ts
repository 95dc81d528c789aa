/**
 * Dynamic gating (SPEC B.3): a stable counting sort of the (token, expert) pairs by expert
 * into exact-size groups. No capacity, no padding, nothing dropped; under expert parallelism
 * a small all-to-all of per-expert counts precedes a variable-size all-to-all of the rows.
 */
import { groupByExpert, tokenTraffic, type DispatchContext, type Routing } from '@moe-route/core'
import { buildExchange, checkDispatchInput, expertsPerDevice, indexBytesOf } from './exchange.js'
import type { DynamicGatingPlan } from './plan.js'

/** Options of {@link dynamicDispatch} (a subset of the plugin's options). */
export interface DynamicDispatchOptions {
  /** See `DynamicGatingOptions.tokenCopies` (default `per-pair`). */
  readonly tokenCopies?: 'per-pair' | 'per-device'
  /** Bytes per count in the size exchange (default 8). */
  readonly countBytes?: number
}

/**
 * Groups the routing's pairs by expert in O(T·k + E): rows of expert e are
 * `offsets[e] .. offsets[e+1]`, in token order (then slot order within a token).
 * A replicated expert's pairs go to replica `t mod replicas` (core's rule), rows stay in one group.
 * @example
 * const plan = dynamicDispatch(routing, { placement: contiguousPlacement(8, 2), bytesPerToken: 4096 * 2 })
 * plan.counts // exact tokens per expert; plan.exchange.sizeBytes // first all-to-all
 */
export function dynamicDispatch(routing: Routing, ctx: DispatchContext, options: DynamicDispatchOptions = {}): DynamicGatingPlan {
  checkDispatchInput(routing, ctx)
  const { tokens, experts, sourceDevice } = routing
  const { placement, bytesPerToken } = ctx
  const D = placement.devices
  const { offsets, counts, rowToken, rowWeight } = groupByExpert(routing)
  const rows = offsets[experts]
  const perPair = (options.tokenCopies ?? 'per-pair') === 'per-pair'
  const payloadRows = perPair ? new Int32Array(D * D) : tokenTraffic(routing, placement, bytesPerToken).sendRows
  if (perPair) {
    for (let e = 0; e < experts; e++) {
      const reps = placement.replicas[e]
      for (let r = offsets[e]; r < offsets[e + 1]; r++) {
        const t = rowToken[r]
        const src = sourceDevice ? sourceDevice[t] : 0
        payloadRows[src * D + (reps.length === 1 ? reps[0] : reps[t % reps.length])]++
      }
    }
  }
  const hostedExperts = expertsPerDevice(placement.replicas, D)
  const { exchange, traffic } = buildExchange(payloadRows, D, bytesPerToken, { hostedExperts, countBytes: options.countBytes ?? 8 })
  return {
    mode: 'dynamic',
    dispatcher: 'dynamic-gating',
    tokens,
    experts,
    offsets,
    counts,
    rowToken,
    rowWeight,
    capacity: null,
    capacityPerSource: null,
    segments: 1,
    paddingRows: 0,
    pairs: rows,
    dropped: [],
    traffic,
    exchange,
    memory: {
      indexBytes: indexBytesOf([rowToken, rowWeight, offsets, counts]),
      maskElements: 0,
      dispatchBufferBytes: rows * bytesPerToken,
    },
  }
}
