/**
 * The GPU lowering of the `dynamic-gating` dispatcher (a grouping stage the backend's kernels
 * run) against its host `dispatch` on a real WebGPU device (Mesa lavapipe in CI, where a
 * missing adapter fails instead of skipping): checkDispatcherLowering compares the plans
 * (offsets, counts, rows, padding, capacity), the static overflow and the dispatch telemetry
 * on generated routings with empty slots, with and without source devices. Every mode,
 * capacity rule, priority and token-copy model is one test. Last, the c2r router, the
 * device-limit policy and this dispatcher in one engine config run wholly on the device and
 * decide as the host engine does on the device's gate probabilities.
 */
import { createMoe, mulberry32, pairsOf, type MoeConfig } from '@moe-route/core'
import { c2rRouter, deviceLimitPolicy } from '@moe-route/policy-c2r'
import dynamicGating from '@moe-route/policy-dynamic-gating'
import { probeAdapter, webgpuBackend } from '@moe-route/backend-webgpu'
import { describe, expect, it, vi } from 'vitest'
import { checkDispatcherLowering } from '@moe-route/testkit'

vi.setConfig({ testTimeout: 180_000 })
const required = Boolean(process.env.CI) || process.env.MOE_ROUTE_REQUIRE_WEBGPU === '1'
const adapter = await probeAdapter()

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

  it('c2r → device-limit → static dynamic-gating: one engine config, every stage on the device, the host engine decisions', async () => {
    const model = { experts: 8, topK: 2, hidden: 32, intermediate: 48, normalizeTopK: true }
    const collaborators = Array.from({ length: 8 }, (_, e) => [1, 2, 3, 4, 5, 6, 7].map((d) => (e + d) % 8))
    const config: MoeConfig = {
      model,
      devices: 4,
      router: { use: 'c2r', options: { topT: 3, collaborators } },
      policies: [{ use: 'device-limit', options: { maxDevices: 1 } }],
      dispatcher: { use: 'dynamic-gating', options: { mode: 'static', capacityFactor: 0.3, priority: 'choice' } },
      backend: { use: 'webgpu', options: { weightsDtype: 'f32' } },
      weights: { seed: 3, std: 0.5 },
    }
    const plugins = [c2rRouter, deviceLimitPolicy, dynamicGating, webgpuBackend]
    const gpu = createMoe({ config, plugins })
    const host = createMoe({ config: { ...config, backend: undefined }, plugins })
    try {
      expect((await gpu.ready()).map((s) => `${s.stage}@${s.where}`)).toEqual([
        'router:c2r@device',
        'policy:device-limit@device',
        'dispatch:dynamic-gating@device',
        'experts@device',
      ])
      const rand = mulberry32(11)
      let moved = 0
      let overflow = 0
      for (const T of [1, 7, 40]) {
        const hidden = Float32Array.from({ length: T * model.hidden }, () => rand() * 2 - 1)
        const sourceDevice = Int32Array.from({ length: T }, (_, t) => (t * 3) % 4)
        const g = await gpu.forward({ id: T, tokens: T, hidden, sourceDevice })
        expect(g.telemetry.hostRoundTrips).toBeUndefined()
        // the host engine on the device's gate probabilities makes the same decisions
        const h = host.route({ id: T, tokens: T, scores: g.routing.scores, sourceDevice })
        const pairs = (r: typeof g.routing) => pairsOf(r).sort((a, b) => a.token - b.token || a.expert - b.expert)
        const [gp, hp] = [pairs(g.routing), pairs(h.routing)]
        expect(gp.map((p) => `${p.token}:${p.expert}`)).toEqual(hp.map((p) => `${p.token}:${p.expert}`))
        gp.forEach((p, i) => expect(Math.abs(p.weight - hp[i].weight)).toBeLessThan(1e-6))
        expect(g.rerouted.map((x) => `${x.token}:${x.from}>${x.to}`)).toEqual(h.rerouted.map((x) => `${x.token}:${x.from}>${x.to}`))
        const drops = (d: typeof g.dropped) => d.map((x) => `${x.token}:${x.expert}:${x.reason}:${x.policy}`).sort()
        expect(drops(g.dropped)).toEqual(drops(h.dropped))
        expect(Array.from(g.plan.offsets)).toEqual(Array.from(h.plan.offsets))
        expect(Array.from(g.plan.rowToken)).toEqual(Array.from(h.plan.rowToken))
        expect(g.telemetry.dispatch).toEqual(h.telemetry.dispatch)
        moved += h.rerouted.length
        overflow += h.dropped.filter((x) => x.reason === 'static-overflow').length
      }
      // the batches exercise both the pruning and the overflow
      expect(moved).toBeGreaterThan(0)
      expect(overflow).toBeGreaterThan(0)
    } finally {
      await gpu.dispose()
      await host.dispose()
    }
  })
})
