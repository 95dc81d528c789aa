/**
 * Device-limited pruning (Occult's router-score pruning; Luo et al., ICML 2025).
 * [SECONDARY] — from a third-party summary of arXiv 2505.13345 (SPEC C.5, E.15), not
 * the official code. Walk a token's chosen experts in descending score and collect their
 * devices until `maxDevices` are allowed; then the token keeps its k best experts among those
 * on allowed devices, so an out-of-scope choice is replaced by the next-best in-scope
 * expert. A token is sent to at most N_d devices. Occult fine-tunes the model with it;
 * inference-only use changes the model's output.
 */
import {
  definePolicy,
  ErrorCodes,
  MoeError,
  type DroppedPair,
  type PlacementMap,
  type PolicyOutcome,
  type ReroutedPair,
  type Routing,
} from '@moe-route/core'
import { deviceLimitStage } from './device-limit.wgsl.js'
import { CORE_RANGE, PACKAGE_NAME, PACKAGE_VERSION } from './meta.js'

const NAME = 'device-limit'

/**
 * Prunes a routing to at most `maxDevices` devices per token. The device of an expert is
 * its primary replica's. Weights are the raw scores of the kept experts, renormalised over
 * them when the routing's `normalizeTopK` is set. Returns the new routing with the pairs
 * that moved (rerouted) and those with no in-scope replacement (dropped, reason 'pruned').
 */
export function limitDevices(routing: Routing, placement: PlacementMap, maxDevices: number, policy = NAME): PolicyOutcome {
  checkMaxDevices(maxDevices)
  if (placement.experts !== routing.experts) {
    throw new MoeError(ErrorCodes.SHAPE_MISMATCH, `placement covers ${placement.experts} experts, routing ${routing.experts}`)
  }
  const { tokens, experts, slots, scores } = routing
  const dev = placement.replicas.map((r) => r[0])
  const expertIds = new Int32Array(tokens * slots).fill(-1)
  const weights = new Float32Array(tokens * slots)
  const dropped: DroppedPair[] = []
  const rerouted: ReroutedPair[] = []
  const allowed = new Uint8Array(placement.devices)
  const mine: number[] = []
  const keep: number[] = []
  for (let t = 0; t < tokens; t++) {
    const o = t * slots
    const so = t * experts
    mine.length = 0
    for (let j = 0; j < slots; j++) if (routing.expertIds[o + j] >= 0) mine.push(routing.expertIds[o + j])
    mine.sort((a, b) => scores[so + b] - scores[so + a] || a - b)
    allowed.fill(0)
    let nAllowed = 0
    for (const e of mine) {
      if (nAllowed >= maxDevices) break
      if (!allowed[dev[e]]) {
        allowed[dev[e]] = 1
        nAllowed++
      }
    }
    // The k best in-scope experts (k = the token's pair count).
    const k = mine.length
    keep.length = 0
    for (let e = 0; e < experts; e++) {
      if (!allowed[dev[e]]) continue
      if (keep.length < k) {
        keep.push(e)
        for (let j = keep.length - 1; j > 0 && scores[so + keep[j]] > scores[so + keep[j - 1]]; j--) [keep[j], keep[j - 1]] = [keep[j - 1], keep[j]]
      } else if (k > 0 && scores[so + e] > scores[so + keep[k - 1]]) {
        keep[k - 1] = e
        for (let j = k - 1; j > 0 && scores[so + keep[j]] > scores[so + keep[j - 1]]; j--) [keep[j], keep[j - 1]] = [keep[j - 1], keep[j]]
      }
    }
    let sum = 0
    for (const e of keep) sum += scores[so + e]
    keep.forEach((e, j) => {
      expertIds[o + j] = e
      weights[o + j] = routing.normalizeTopK ? (sum > 0 ? scores[so + e] / sum : 1 / keep.length) : scores[so + e]
    })
    const added = keep.filter((e) => !mine.includes(e))
    const removed = mine.filter((e) => !keep.includes(e))
    removed.forEach((from, i) => {
      const weight = weightOf(routing, t, from)
      if (i < added.length) rerouted.push({ token: t, from, to: added[i], weight, policy })
      else dropped.push({ token: t, expert: from, weight, reason: 'pruned', policy })
    })
  }
  return { routing: { ...routing, expertIds, weights }, dropped, rerouted }
}

/** Throws MOE_ROUTE_ERR_INPUT_INVALID unless N_d is a positive integer. */
function checkMaxDevices(maxDevices: number): void {
  if (!Number.isInteger(maxDevices) || maxDevices < 1) {
    throw new MoeError(ErrorCodes.INPUT_INVALID, `maxDevices must be a positive integer, got ${maxDevices}`, { path: '/maxDevices' })
  }
}

function weightOf(routing: Routing, t: number, e: number): number {
  for (let j = 0; j < routing.slots; j++) if (routing.expertIds[t * routing.slots + j] === e) return routing.weights[t * routing.slots + j]
  return 0
}

/** Options of the `device-limit` policy. */
export interface DeviceLimitOptions {
  /** N_d: most devices a token may be sent to (Occult's sweet spot: 2). */
  maxDevices: number
}

/** The `device-limit` policy plugin (Occult router-score pruning, [SECONDARY]). */
export const deviceLimitPolicy = definePolicy<DeviceLimitOptions>({
  meta: {
    name: NAME,
    package: PACKAGE_NAME,
    version: PACKAGE_VERSION,
    core: CORE_RANGE,
    description: "At most N_d devices per token, chosen by router score (Occult's pruning, secondary source)",
    schema: { type: 'object', properties: { maxDevices: { type: 'integer', minimum: 1 } }, required: ['maxDevices'], additionalProperties: false },
    defaultOptions: { maxDevices: 2 },
    device: ['wgsl'],
  },
  create(options) {
    return {
      name: NAME,
      apply: (routing, ctx) => limitDevices(routing, ctx.placement, options.maxDevices),
      lower: (ctx) => {
        checkMaxDevices(options.maxDevices)
        return deviceLimitStage(options.maxDevices, ctx)
      },
    }
  },
})
