/**
 * GPU lowerings of the first-party policies against their host `apply` (checkLowering) on a
 * real WebGPU device: Mesa lavapipe in CI, where a missing adapter fails instead of skipping.
 * Each option set is one test: every priority, scope, renormalisation and decode rule.
 */
import capacityDrop from '@moe-route/policy-capacity/capacity-drop'
import { probeAdapter } from '@moe-route/backend-webgpu'
import { describe, it, vi } from 'vitest'
import { checkLowering } from '@moe-route/testkit'

vi.setConfig({ testTimeout: 180_000 })
const required = Boolean(process.env.CI) || process.env.MOE_ROUTE_REQUIRE_WEBGPU === '1'
const adapter = await probeAdapter()

describe.runIf(adapter || required)(`GPU lowerings on ${adapter ?? 'no adapter'}`, () => {
  const capacityCases: [string, object][] = [
    ['score, global, weights kept', { capacityFactor: 1.0 }],
    ['score, tight, model-native weights', { capacityFactor: 0.5, renormalize: 'model-native' }],
    ['first, floor, renormalised over kept', { capacityFactor: 0.8, priority: 'first', rounding: 'floor', renormalize: 'kept' }],
    ['last, round', { capacityFactor: 1.2, priority: 'last', rounding: 'round' }],
    ['random priority (seeded draws)', { capacityFactor: 0.7, priority: 'random' }],
    ['per source device, decode capped', { capacityFactor: 0.9, scope: 'per-source-device', applyToDecode: true }],
  ]
  for (const [name, options] of capacityCases) {
    it(`capacity-drop: ${name}`, () => checkLowering(capacityDrop, options, { runs: 40 }))
  }
})
