/**
 * The built-in dispatcher: a stable counting sort of pairs by expert into exact-size groups
 * (no capacity, no padding), with the device traffic the groups imply.
 */
import { defineDispatcher } from '../plugin/define.js'
import type { PlacementMap } from '../placement/placement.js'
import { CORE_VERSION } from '../version.js'
import type { DispatchPlan, DispatchTraffic, Routing } from '../types.js'
import type { DispatchContext } from '../dispatcher/dispatcher.js'
import type { GroupingStage } from '../device/lowering.js'
import { groupByExpert } from '../routing/group.js'

/**
 * Groups the routing's pairs by expert, token order within a group (counting sort, O(T·k+E)).
 */
export function exactSizeDispatch(routing: Routing, ctx: DispatchContext): DispatchPlan {
  const { offsets, counts, rowToken, rowWeight } = groupByExpert(routing)
  return {
    mode: 'dynamic',
    tokens: routing.tokens,
    experts: routing.experts,
    offsets,
    counts,
    rowToken,
    rowWeight,
    capacity: null,
    paddingRows: 0,
    dropped: [],
    traffic: tokenTraffic(routing, ctx.placement, ctx.bytesPerToken),
  }
}

/**
 * Token replicas sent between devices: a token goes once to each distinct device hosting
 * one of its experts (co-located experts share one copy). Replicated experts send the
 * token to the replica chosen round-robin by token index.
 */
export function tokenTraffic(routing: Routing, placement: PlacementMap, bytesPerToken: number): DispatchTraffic {
  const D = placement.devices
  const sendRows = new Int32Array(D * D)
  const seen = new Int32Array(D).fill(-1)
  const { tokens, slots, expertIds, sourceDevice } = routing
  let crossing = 0
  for (let t = 0; t < tokens; t++) {
    const src = sourceDevice ? sourceDevice[t] : 0
    for (let j = 0; j < slots; j++) {
      const e = expertIds[t * slots + j]
      if (e < 0) continue
      const reps = placement.replicas[e]
      const dst = reps.length === 1 ? reps[0] : reps[t % reps.length]
      if (seen[dst] === t) continue
      seen[dst] = t
      sendRows[src * D + dst]++
      if (dst !== src) crossing++
    }
  }
  return { devices: D, sendRows, bytesCrossDevice: crossing * bytesPerToken }
}

/** The device lowering of exact-size grouping (the backend's grouping kernels, same rows in the same order). */
export const EXACT_GROUPING: GroupingStage = { kind: 'grouping', key: 'exact', padding: 'exact', mode: 'dynamic' }

/** The `exact-size` dispatcher plugin (core's default; see @moe-route/policy-dynamic-gating for more). */
export const exactSizeDispatcher = defineDispatcher<Record<string, never>>({
  meta: {
    name: 'exact-size',
    package: '@moe-route/core',
    version: CORE_VERSION,
    core: `^${CORE_VERSION}`,
    description: 'Exact-size expert groups by counting sort (no capacity, no padding)',
    schema: { type: 'object', properties: {}, additionalProperties: false },
    defaultOptions: {},
    device: ['grouping'],
  },
  create() {
    return { name: 'exact-size', dispatch: exactSizeDispatch, lower: () => EXACT_GROUPING }
  },
})
