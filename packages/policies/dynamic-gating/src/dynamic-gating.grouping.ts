/**
 * The device implementation of the `dynamic-gating` dispatcher: a core {@link GroupingStage},
 * run by a GPU backend's grouping kernels (grouping by expert lives once, in the backend).
 * Dynamic mode is the exact-size grouping (token then slot order within an expert, as
 * {@link dynamicDispatch}); static mode pads every expert to {@link staticCapacity} rows per
 * source device — from the busiest source device, as {@link staticDispatch} — fills them in
 * `priority` order and drops the overflow with reason `static-overflow`. Telemetry's
 * crossing bytes follow the host's exchange model: one row per pair (`tokenCopies: 'per-pair'`)
 * or per destination device (`'per-device'`), every padded slot for static gating.
 */
import type { GroupingStage, LoweringContext } from '@moe-route/core'
import type { DynamicGatingOptions } from './dynamic-gating.schema.js'
import { staticCapacity } from './static-dispatch.js'

/**
 * The grouping stage that makes the plans of `createDynamicGating(options)` (offsets, counts,
 * rows, padding, overflow, bytes crossing devices; the full exchange matrices and memory facts
 * are host-side numbers).
 * @example
 * const stage = dynamicGatingGrouping({ ...defaultOptions, mode: 'static', capacityFraction: 0.05 }, ctx)
 */
export function dynamicGatingGrouping(options: DynamicGatingOptions, ctx: LoweringContext): GroupingStage {
  if (options.mode === 'dynamic') {
    const traffic = options.tokenCopies === 'per-pair' ? 'per-pair' : 'per-device'
    return { kind: 'grouping', key: `dynamic-gating|dynamic|${traffic}`, padding: 'exact', priority: 'token', mode: 'dynamic', traffic }
  }
  const { topK, experts } = ctx.model
  // fail at build time, like the host's first dispatch would
  staticCapacity(1, options, topK, experts)
  return {
    kind: 'grouping',
    key: `dynamic-gating|static|${options.priority}`,
    padding: 'padded',
    capacity: (_batch, busiestSourceTokens) => staticCapacity(busiestSourceTokens, options, topK, experts),
    segments: 'per-source-device',
    priority: options.priority,
    mode: 'static',
    dropReason: 'static-overflow',
    traffic: 'padded-slots',
  }
}
