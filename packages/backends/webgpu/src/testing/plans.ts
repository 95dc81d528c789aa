/**
 * Test support (not published): host dispatch plans of the three shapes the expert kernels
 * must handle — exact-size groups, groups after capacity-aware token drop, and static gating's
 * padded groups — built with the real host plugins.
 */
import { exactSizeDispatch, contiguousPlacement, mulberry32, type DispatchPlan, type Routing } from '@moe-route/core'
import { tokenDrop, defaultOptions as dropDefaults } from '@moe-route/policy-capacity/capacity-drop'
import { staticDispatch } from '@moe-route/policy-dynamic-gating'

/** What happens between top-k and the experts in a kernel test. */
export interface PlanPolicy {
  /** `dynamic` (default): exact sizes, with capacity drop when `capacityFactor` is set; `static`: padded to C = ceil(γ·k·T/E). */
  readonly mode?: 'dynamic' | 'static'
  readonly capacityFactor?: number
}

/** The host plan of `routing` (slots = k) under `policy`, on one device. */
export function hostPlan(routing: Routing, policy: PlanPolicy): DispatchPlan {
  const ctx = { placement: contiguousPlacement(routing.experts, 1), bytesPerToken: 4 }
  if (policy.mode === 'static') return staticDispatch(routing, ctx, { capacityFactor: policy.capacityFactor ?? 1, capacityRule: 'expert-share' })
  const r = policy.capacityFactor === undefined ? routing : tokenDrop(routing, { ...dropDefaults, capacityFactor: policy.capacityFactor }, mulberry32(1)).routing
  return exactSizeDispatch(r, ctx)
}
