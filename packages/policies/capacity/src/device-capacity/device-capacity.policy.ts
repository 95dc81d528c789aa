/**
 * The `device-capacity` policy: the device-level Advanced Variant of Capacity-Aware Inference
 * (SPEC A.2, A.5 end, E.7). The straggler is the device, so the budget is per device:
 * Σ_{e on d} N_e ≤ n_d·γ·N̄ with n_d experts on device d and N̄ = k·T/E. A device over budget
 * drops its lowest-score pairs first (the paper gives no order; this one is SPEC E.7's).
 */
import { defineCapacityPolicy, type CapacityPolicyInstance } from '../define-capacity-policy.js'
import {
  type Plugin,
  ErrorCodes,
  MoeError,
  pairScores,
  type PlacementMap,
  type PolicyOutcome,
  type Routing,
} from '@moe-route/core'
import { capacityCut, capacityOf, capacityOutcome, type CapacityRounding, checkRouting, DECODE_SKIPPED, outputPairs, pairGroups, pairTable, priorityKeys, pushPair, skippedOutcome } from '../shared/index.js'
import { defaultOptions, schema, type DeviceCapacityOptions } from './device-capacity.schema.js'
import { deviceCapacityStage } from './device-capacity.wgsl.js'

export { PACKAGE_NAME, PACKAGE_VERSION } from '../meta.js'
/** Policy name used in configs, errors and dropped-pair reports. */
export const POLICY_NAME = 'device-capacity'

/**
 * The device each expert counts against: its primary replica (`replicas[e][0]`). With
 * replication an expert's pairs all count against its primary device.
 */
export function primaryDevices(placement: PlacementMap, experts: number, policy = POLICY_NAME): Int32Array {
  if (placement.experts !== experts || placement.replicas.length !== experts) {
    throw new MoeError(ErrorCodes.INPUT_INVALID, `${policy}: the placement covers ${placement.experts} experts but the routing has ${experts}`, {
      plugin: policy,
    })
  }
  return Int32Array.from(placement.replicas, (r) => r[0] ?? 0)
}

/**
 * Per-device budgets for a group of `tokens` tokens: rounding(n_d·γ·k·T/E), where n_d counts
 * the experts whose primary replica is on device d.
 */
export function deviceBudgets(
  primary: Int32Array,
  devices: number,
  capacityFactor: number,
  tokens: number,
  topK: number,
  rounding: CapacityRounding,
): number[] {
  const perDevice = new Array<number>(devices).fill(0)
  for (const d of primary) perDevice[d]++
  return perDevice.map((n) => capacityOf(capacityFactor * n, tokens, topK, primary.length, rounding))
}

/**
 * Applies the device-level cap to one routing (pure). Pairs over a device budget are dropped
 * with reason `device-capacity`, lowest score first (ties: higher token, then higher expert
 * index lose). `capacity` in the outcome is the per-expert share ⌈γ·k·T/E⌉ of a budget.
 */
export function applyDeviceCapacity(routing: Routing, options: DeviceCapacityOptions, placement: PlacementMap, policy = POLICY_NAME): PolicyOutcome {
  checkRouting(routing, policy)
  if (routing.decode && !options.applyToDecode) return skippedOutcome(routing, DECODE_SKIPPED)
  const primary = primaryDevices(placement, routing.experts, policy)
  const table = pairTable(routing)
  const keys = priorityKeys(routing, table, 'score')
  const device = new Int32Array(table.count)
  for (let p = 0; p < table.count; p++) device[p] = primary[table.expert[p]]
  const over = new Uint8Array(table.count)
  const sorted = new Uint8Array(table.count)
  let capacity = 0
  for (const group of pairGroups(routing, table, options.scope)) {
    const T = group.tokens
    capacity = Math.max(capacity, capacityOf(options.capacityFactor, T, routing.topK, routing.experts, options.rounding))
    const budgets = deviceBudgets(primary, placement.devices, options.capacityFactor, T, routing.topK, options.rounding)
    capacityCut(table, group.pairs, device, placement.devices, (d) => budgets[d], keys, over, sorted)
  }
  // kept pairs of a token in the order the reference lists them: by device, then within a
  // device bucket that was sorted by key descending and expert, else in slot order
  const before = (a: number, b: number) =>
    device[a] - device[b] || (sorted[a] ? keys[b] - keys[a] || table.expert[a] - table.expert[b] : 0) || a - b
  const out = outputPairs(table.count)
  const top = pairScores(routing)
  const idx: number[] = []
  for (let t = 0; t < routing.tokens; t++) {
    idx.length = 0
    for (let p = table.tokenStart[t]; p < table.tokenStart[t + 1]; p++) if (!over[p]) idx.push(p)
    if (idx.length > 1) idx.sort(before)
    for (const p of idx) pushPair(out, t, table.expert[p], routing.weights[table.slot[p]], top[table.slot[p]])
  }
  return capacityOutcome(routing, out, { table, over, reason: 'device-capacity', policy, capacity, renormalize: options.renormalize })
}

const family = defineCapacityPolicy<DeviceCapacityOptions>({
  name: POLICY_NAME,
  description: 'Device-level capacity: Σ load on a device ≤ n_d·γ·k·T/E, lowest-score pairs on the device dropped first',
  schema,
  defaultOptions,
  apply: (routing, o, ctx) => applyDeviceCapacity(routing, o, ctx.placement),
  lower: (o, ctx) => deviceCapacityStage(o, ctx, primaryDevices(ctx.placement, ctx.model.experts)),
})

/**
 * Creates the policy directly, without a registry (defaults merged under `options`). The
 * placement comes from each call's `PolicyContext` (core).
 * @example
 * const policy = createDeviceCapacity({ capacityFactor: 1 })
 * const outcome = policy.apply(routing, { placement: contiguousPlacement(64, 8), batchId: 0, random })
 */
export const createDeviceCapacity: (options?: Partial<DeviceCapacityOptions>) => CapacityPolicyInstance<DeviceCapacityOptions> = family.create

/**
 * The `device-capacity` policy plugin. Select it in a config with
 * `{ "use": "device-capacity", "options": { "capacityFactor": 1 } }` (and `"devices": 8`).
 * @example
 * import { deviceCapacity } from '@moe-route/policy-capacity'
 * registry.register(deviceCapacity)
 */
export const deviceCapacity: Plugin<'policy', DeviceCapacityOptions> = family.plugin
