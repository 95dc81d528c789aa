/**
 * What a router, policy or dispatcher returns is checked before the next stage uses it: a
 * plugin's output is input like any other. A routing or plan of the wrong shape, an expert id
 * out of range or a negative weight is MOE_ROUTE_ERR_PLUGIN_FAILED naming the plugin and hook,
 * instead of an index past an array or a wrong result further down. O(tokens · slots).
 */
import { ErrorCodes, MoeError } from '../errors.js'
import type { DispatchPlan, Routing } from '../types.js'

/** Checks a routing a plugin returned for a batch of `tokens` tokens over `experts` experts. */
export function checkRoutingOutput(r: unknown, tokens: number, experts: number, plugin: string, hook: string): Routing {
  const bad = (why: string): never => {
    throw new MoeError(ErrorCodes.PLUGIN_FAILED, `plugin ${plugin} returned a bad routing from ${hook}: ${why}`, { plugin, hook })
  }
  if (!r || typeof r !== 'object') bad('it is not an object')
  const routing = r as Routing
  if (routing.tokens !== tokens) bad(`tokens is ${String(routing.tokens)}, the batch has ${tokens}`)
  if (routing.experts !== experts) bad(`experts is ${String(routing.experts)}, the model has ${experts}`)
  if (!Number.isInteger(routing.slots) || routing.slots < 0) bad(`slots is ${String(routing.slots)}`)
  if (!(routing.expertIds instanceof Int32Array) || routing.expertIds.length !== tokens * routing.slots) bad('expertIds is not an Int32Array of tokens × slots')
  if (!(routing.weights instanceof Float32Array) || routing.weights.length !== tokens * routing.slots) bad('weights is not a Float32Array of tokens × slots')
  if (!(routing.scores instanceof Float32Array) || routing.scores.length !== tokens * experts) bad('scores is not a Float32Array of tokens × experts')
  const { expertIds: ids, weights: w } = routing
  for (let i = 0; i < ids.length; i++) {
    if (ids[i] < -1 || ids[i] >= experts) bad(`expert id ${ids[i]} at token ${Math.floor(i / routing.slots)} is outside -1 … ${experts - 1}`)
    if (!(w[i] >= 0) || w[i] === Infinity) bad(`weight ${w[i]} at token ${Math.floor(i / routing.slots)} is not finite and ≥ 0`)
  }
  return routing
}

/** Checks a dispatch plan a plugin returned: offsets, rows and their tokens within the batch. */
export function checkPlanOutput(p: unknown, tokens: number, experts: number, plugin: string): DispatchPlan {
  const bad = (why: string): never => {
    throw new MoeError(ErrorCodes.PLUGIN_FAILED, `plugin ${plugin} returned a bad dispatch plan: ${why}`, { plugin, hook: 'dispatch' })
  }
  if (!p || typeof p !== 'object') bad('it is not an object')
  const plan = p as DispatchPlan
  if (plan.experts !== experts) bad(`experts is ${String(plan.experts)}, the model has ${experts}`)
  if (!(plan.offsets instanceof Int32Array) || plan.offsets.length !== experts + 1) bad('offsets is not an Int32Array of experts + 1')
  if (!(plan.rowToken instanceof Int32Array) || !(plan.rowWeight instanceof Float32Array) || plan.rowWeight.length !== plan.rowToken.length) bad('rowToken and rowWeight are not arrays of one length')
  if (!(plan.counts instanceof Int32Array) || plan.counts.length !== experts) bad('counts is not an Int32Array of experts')
  if (plan.offsets[0] !== 0 || plan.offsets[experts] !== plan.rowToken.length) bad('offsets do not start at 0 and end at the row count')
  for (let e = 0; e < experts; e++) if (plan.offsets[e + 1] < plan.offsets[e]) bad(`offsets decrease at expert ${e}`)
  for (let i = 0; i < plan.rowToken.length; i++) if (plan.rowToken[i] < -1 || plan.rowToken[i] >= tokens) bad(`row ${i} holds token ${plan.rowToken[i]}, outside -1 … ${tokens - 1}`)
  if (!Array.isArray(plan.dropped)) bad('dropped is not an array')
  return plan
}
