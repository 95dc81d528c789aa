/**
 * GPU lowerings of the capacity family beyond capacity-drop (expert-drop, device-capacity)
 * against their host `apply` (checkLowering) on a real WebGPU device: Mesa lavapipe in CI,
 * where a missing adapter fails instead of skipping. Each option set is one test: every drop
 * form, rounding, scope, renormalisation and decode rule, devices > 1 and placements with
 * replicas and uneven experts per device.
 */
import { contiguousPlacement, createRouting, exactSizeDispatcher, mulberry32, pairsOf, softmaxTopK, type Dispatcher, type PlacementMap, type Routing } from '@moe-route/core'
import deviceCapacity from '@moe-route/policy-capacity/device-capacity'
import expertDrop, { createExpertDrop } from '@moe-route/policy-capacity/expert-drop'
import { createWebGpuBackend, probeAdapter } from '@moe-route/backend-webgpu'
import { describe, expect, it, vi } from 'vitest'
import type { RoutingCase } from '@moe-route/testkit'
import { checkLowering } from '@moe-route/testkit'

vi.setConfig({ testTimeout: 180_000 })
const required = Boolean(process.env.CI) || process.env.MOE_ROUTE_REQUIRE_WEBGPU === '1'
const adapter = await probeAdapter()

/** One slot per token: token t goes to experts[t] with score scores[t] (other scores 0). */
function oneSlot(experts: number, ids: number[], scores: number[]): Routing {
  const T = ids.length
  const s = new Float32Array(T * experts)
  ids.forEach((e, t) => (s[t * experts + e] = scores[t]))
  return createRouting({ tokens: T, experts, topK: 1, expertIds: Int32Array.from(ids), weights: Float32Array.from(scores), scores: s, normalizeTopK: false })
}
const at = (routing: Routing, devices = 1): RoutingCase => ({ routing, devices, seed: 7, batchId: 3 })
const tiny = 2 ** -149

/**
 * Expert masses that f32 sums would tie or misorder but the host's f64 sums (and the exact
 * device sums) do not: ulp-level differences, subnormals, values near the f32 maximum and
 * negative scores. Each routing has two experts with equal load; `drop: 1` must skip the one
 * with less mass.
 */
const massCases: RoutingCase[] = [
  at(oneSlot(2, [0, 0, 1, 1], [0.5, 2 ** -26, 0.5, 2 ** -27])),
  at(oneSlot(2, [1, 1, 0, 0], [0.5, 2 ** -26, 0.5, 2 ** -27])),
  at(oneSlot(2, [0, 0, 1, 1], [2 * tiny, tiny, tiny, tiny])),
  at(oneSlot(3, [0, 0, 1, 1, 2, 2, 2], [3e38, 3e38, 3e38, 2.9e38, 0.1, 0.1, 0.1])),
  at(oneSlot(2, [0, 0, 1, 1], [-0.25, 0.5, 0.125, 0.0625])),
  at(oneSlot(2, [0, 0, 1, 1], [-0.25, 0.5, 0.25, 0])),
  at(oneSlot(2, [0, 0, 1, 1], [-1e-30, 1e-30, -2e-30, 2e-30])),
  at(oneSlot(2, [1, 1, 0, 0], [-0.5, 0.25, 0.125, 0.0625])),
  at(oneSlot(2, [1, 1, 0, 0], [-0.5, 0.25, -0.25, 0.125])),
]

/** Primary devices spread (e·3 + 1 mod D), every even expert replicated on the next device: uneven n_d. */
function spreadWithReplicas(experts: number, devices: number): PlacementMap {
  const replicas = Array.from({ length: experts }, (_, e) => {
    const d = (e * 3 + 1) % devices
    return devices > 1 && e % 2 === 0 ? [d, (d + 1) % devices] : [d]
  })
  return { devices, experts, replicas, strategy: 'test-spread' }
}

/** Score ties across experts of one device (integer logits), routed as the engine would. */
const tieCase = (devices: number): RoutingCase => {
  const logits = Float32Array.from({ length: 12 * 8 }, (_, i) => ((i * 7) % 5) - 2)
  return at(softmaxTopK({ tokens: 12, experts: 8, logits }, 3, false), devices)
}

describe.runIf(adapter || required)(`capacity-family GPU lowerings on ${adapter ?? 'no adapter'}`, () => {
  const expertDropCases: [string, object][] = [
    ['one expert (count), weights kept', { drop: 1 }],
    ['fraction of E, model-native weights', { drop: 0.3, renormalize: 'model-native' }],
    ['count, renormalised over kept, decode dropped too', { drop: 3, renormalize: 'kept', applyToDecode: true }],
    ['a fraction that rounds to no expert (weights still renormalised)', { drop: 0.05, renormalize: 'kept' }],
    ['more experts than E (all dropped)', { drop: 40, renormalize: 'model-native', applyToDecode: true }],
  ]
  for (const [name, options] of expertDropCases) {
    it(`expert-drop: ${name}`, () => checkLowering(expertDrop, options, { runs: 40 }))
  }
  it('expert-drop: equal loads ordered by exact routed mass (ulps, subnormals, f32 max, negative scores)', () =>
    checkLowering(expertDrop, { drop: 1 }, { runs: 5, examples: massCases }))

  it('expert-drop: a mass limb that wraps carries into the next one (1.1M pairs per expert)', async () => {
    // 1 − 2^-24 adds 4095 to one 12-bit limb per pair: that limb wraps after 1,048,833 pairs,
    // and without the carry expert 0's mass would fall 2^15 below expert 1's (N·0.98 vs N·(1 − 2^-24)).
    const N = 1_100_000
    const s0 = Math.fround(1 - 2 ** -24)
    const s1 = Math.fround(0.98)
    const scores = new Float32Array(2 * N)
    const weights = new Float32Array(2 * N)
    const ids = new Int32Array(2 * N)
    for (let t = 0; t < N; t++) {
      scores.set([s0, s1], 2 * t)
      weights.set([s0, s1], 2 * t)
      ids.set([0, 1], 2 * t)
    }
    const routing = createRouting({ tokens: N, experts: 2, topK: 2, expertIds: ids, weights, scores, normalizeTopK: false })
    const policy = createExpertDrop({ drop: 1 })
    const host = policy.apply(routing, { placement: contiguousPlacement(2, 1), batchId: 1, random: mulberry32(1) })
    const model = { experts: 2, topK: 2, hidden: 16, intermediate: 16, normalizeTopK: false }
    const backend = createWebGpuBackend({ weightsDtype: 'f32' })
    try {
      const pipeline = await backend.pipeline({
        model,
        placement: contiguousPlacement(2, 1),
        seed: 1,
        router: { name: 'given', route: () => routing },
        policies: [policy],
        dispatcher: exactSizeDispatcher.create({}, { model, devices: 1, seed: 1 }) as Dispatcher,
        weights: { kind: 'seeded', seed: 1, std: 0.02 },
        activationBytes: 2,
      })
      expect(pipeline.stages[1]).toEqual({ stage: 'policy:expert-drop', where: 'device' })
      const res = await pipeline.forward({ id: 1, tokens: N, scores }, { detail: 'telemetry' })
      await pipeline.dispose()
      const hostLoad = [0, 0]
      for (const p of pairsOf(host.routing)) hostLoad[p.expert]++
      expect(hostLoad).toEqual([N, 0])
      expect(res.counts.loadAfter).toEqual(hostLoad)
      expect(res.counts.policies[0].dropped).toBe(host.dropped.length)
    } finally {
      await backend.dispose()
    }
  })

  const deviceCases: [string, object, object][] = [
    ['γ 1, ceil, weights kept', { capacityFactor: 1 }, {}],
    ['tight, floor, model-native weights', { capacityFactor: 0.6, rounding: 'floor', renormalize: 'model-native' }, {}],
    ['round, renormalised over kept, decode capped', { capacityFactor: 0.8, rounding: 'round', renormalize: 'kept', applyToDecode: true }, {}],
    ['per source device', { capacityFactor: 0.7, scope: 'per-source-device' }, {}],
    ['per source device, decode capped, kept weights', { capacityFactor: 1.1, scope: 'per-source-device', applyToDecode: true, renormalize: 'kept' }, {}],
  ]
  for (const [name, options] of deviceCases) {
    it(`device-capacity: ${name}`, () =>
      checkLowering(deviceCapacity, options, { runs: 40, routings: { minDevices: 2, maxDevices: 4 }, examples: [tieCase(2), tieCase(3)] }))
  }
  it('device-capacity: one device (a global cap over every pair)', () =>
    checkLowering(deviceCapacity, { capacityFactor: 0.5, applyToDecode: true }, { runs: 30, routings: { maxDevices: 1 } }))
  it('device-capacity: spread placement with replicas (primary devices, uneven experts per device)', () =>
    checkLowering(deviceCapacity, { capacityFactor: 0.75, renormalize: 'model-native' }, { runs: 40, routings: { minDevices: 2, maxDevices: 4 }, placement: spreadWithReplicas }))
  it('device-capacity: spread placement, per source device', () =>
    checkLowering(deviceCapacity, { capacityFactor: 0.9, scope: 'per-source-device', rounding: 'floor', applyToDecode: true }, { runs: 40, routings: { minDevices: 2, maxDevices: 3 }, placement: spreadWithReplicas }))
})
