/** Capacity scopes: one capacity for the whole batch, or one per source device (SPEC A.3). */
import { expertCapacity, type Routing } from '@moe-route/core'

/** `global`: one routing group; `per-source-device`: each source device enforces its own capacity. */
export type CapacityScope = 'global' | 'per-source-device'

/** How a real-valued capacity becomes a whole number of pairs. */
export type CapacityRounding = 'ceil' | 'floor' | 'round'

/** The tokens that share one capacity budget. */
export interface ScopeGroup {
  /** Source device of the group, or -1 for the global scope. */
  readonly device: number
  /** Token indices of the group, ascending. */
  readonly tokens: readonly number[]
}

/**
 * Splits a batch into capacity groups. `global` gives one group with every token;
 * `per-source-device` gives one group per distinct `routing.sourceDevice` value (ascending),
 * all tokens on device 0 when the routing has no source devices.
 */
export function scopeGroups(routing: Routing, scope: CapacityScope): ScopeGroup[] {
  const all = Array.from({ length: routing.tokens }, (_, t) => t)
  if (scope === 'global') return [{ device: -1, tokens: all }]
  const src = routing.sourceDevice
  if (!src) return [{ device: 0, tokens: all }]
  const byDevice = new Map<number, number[]>()
  for (let t = 0; t < routing.tokens; t++) {
    let list = byDevice.get(src[t])
    if (!list) byDevice.set(src[t], (list = []))
    list.push(t)
  }
  return [...byDevice.keys()].sort((a, b) => a - b).map((device) => ({ device, tokens: byDevice.get(device)! }))
}

/**
 * Per-expert capacity of a group of `tokens` tokens: `C = rounding(γ·k·T/E)` (SPEC A.3, E.2;
 * the official code uses `ceil`). Float noise is snapped (1.5·2·512/8 is exactly 192).
 */
export function capacityOf(capacityFactor: number, tokens: number, topK: number, experts: number, rounding: CapacityRounding): number {
  return expertCapacity(capacityFactor, tokens, topK, experts, rounding)
}
