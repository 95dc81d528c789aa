/**
 * The GPU lowering of the `dynamic-gating` dispatcher (a grouping stage the backend's kernels
 * run) against its host `dispatch` on a real WebGPU device (Mesa lavapipe in CI, where a
 * missing adapter fails instead of skipping): checkDispatcherLowering compares the plans
 * (offsets, counts, rows, padding, capacity), the static overflow and the dispatch telemetry
 * on generated routings with empty slots, with and without source devices. Every mode,
 * capacity rule, priority and token-copy model is one test.
 */
import dynamicGating from '@moe-route/policy-dynamic-gating'
import { probeAdapter } from '@moe-route/backend-webgpu'
import { describe, it, vi } from 'vitest'
import { checkDispatcherLowering } from './lowering.js'

vi.setConfig({ testTimeout: 180_000 })
const required = Boolean(process.env.CI) || process.env.MOE_ROUTE_REQUIRE_WEBGPU === '1'
const adapter = await probeAdapter()
if (!adapter && !required) console.warn('[@moe-route/testkit] no WebGPU adapter: skipping the lowering checks (install Mesa lavapipe: scripts/install-lavapipe.sh)')

describe.runIf(adapter || required)(`GPU lowering of dynamic-gating on ${adapter ?? 'no adapter'}`, () => {
  const cases: [string, object][] = [
    ['dynamic, one row per pair crosses devices', { mode: 'dynamic' }],
    ['dynamic, one copy per destination device', { mode: 'dynamic', tokenCopies: 'per-device' }],
    ['static, C·S, token order', { mode: 'static', capacityFactor: 1 }],
    ['static, tight C·S (overflow), token order', { mode: 'static', capacityFactor: 0.15 }],
    ['static, tight C·S (overflow), choice order', { mode: 'static', capacityFactor: 0.15, priority: 'choice' }],
    ['static, fairseq eval fraction, choice order', { mode: 'static', capacityFraction: 0.1, priority: 'choice' }],
    ['static, expert share C·k·S/E, token order', { mode: 'static', capacityFactor: 1.25, capacityRule: 'expert-share' }],
    ['static, expert share below 1 (overflow), choice order', { mode: 'static', capacityFactor: 0.6, capacityRule: 'expert-share', priority: 'choice' }],
  ]
  for (const [name, options] of cases) {
    it(`dynamic-gating: ${name}`, () => checkDispatcherLowering(dynamicGating, options, { runs: 40 }))
  }
  it('dynamic-gating: static on two to four devices (half the batches with source devices: per-source segments)', () =>
    checkDispatcherLowering(dynamicGating, { mode: 'static', capacityFactor: 0.3, priority: 'choice' }, { runs: 40, routings: { minDevices: 2 } }))
})
