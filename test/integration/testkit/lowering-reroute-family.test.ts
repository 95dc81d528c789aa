/**
 * GPU lowerings of the reroute family (expanded-drop, reroute, spare-capacity-reroute)
 * against their host `apply` (checkLowering) on a real WebGPU device: Mesa lavapipe in CI,
 * where a missing adapter fails instead of skipping. Each option set is one test; together
 * they cover every option value of the three policies.
 */
import {
  contiguousPlacement,
  exactSizeDispatcher,
  mulberry32,
  pairsOf,
  type Dispatcher,
  type LoweringContext,
  type ModelShape,
  type Router,
  type Routing,
  type RoutingPolicy,
} from '@moe-route/core'
import { createWebGpuBackend, probeAdapter } from '@moe-route/backend-webgpu'
import expandedDrop, { createExpandedDrop, MAX_LOWERED_SOURCE_DEVICES as EXPANDED_MAX } from '@moe-route/policy-capacity/expanded-drop'
import reroute, { createReroute, MAX_LOWERED_SOURCE_DEVICES as REROUTE_MAX } from '@moe-route/policy-capacity/reroute'
import spareCapacityReroute, { createSpareCapacityReroute, MAX_LOWERED_SOURCE_DEVICES as SPARE_MAX } from '@moe-route/policy-capacity/spare-capacity-reroute'
import fc from 'fast-check'
import { describe, expect, it, vi } from 'vitest'
import { routingCase } from '@moe-route/testkit'
import { checkLowering } from '@moe-route/testkit'

vi.setConfig({ testTimeout: 180_000 })
const required = Boolean(process.env.CI) || process.env.MOE_ROUTE_REQUIRE_WEBGPU === '1'
const adapter = await probeAdapter()

describe.runIf(adapter || required)(`GPU lowerings of the reroute family on ${adapter ?? 'no adapter'}`, () => {
  const multi = { minDevices: 2 }
  const expandedCases: [string, object, object?][] = [
    ['all candidates, γ = 1', { capacityFactor: 1, candidates: 'all' }],
    ['global top-M (ratio 1.5), tight, floor', { capacityFactor: 0.5, candidates: 'global-topM', overselectionRatio: 1.5, rounding: 'floor' }],
    ['global top-M (ratio 3), model-native weights, max 2 per token', { capacityFactor: 1.2, candidates: 'global-topM', overselectionRatio: 3, weights: 'model-native', maxExpertsPerToken: 2 }],
    ['local from the placement, round', { capacityFactor: 1, candidates: 'local', rounding: 'round' }, multi],
    ['local, per source device, decode capped, max 1 per token', { capacityFactor: 0.8, candidates: 'local', scope: 'per-source-device', applyToDecode: true, maxExpertsPerToken: 1 }, multi],
    ['flat localExperts', { capacityFactor: 1.5, candidates: 'local', localExperts: [0, 2] }, { minExperts: 3 }],
    ['nested localExperts by source device', { capacityFactor: 0.7, candidates: 'local', localExperts: [[0], [1, 0], [1], [0, 1]], applyToDecode: true }, { minExperts: 2, maxDevices: 4 }],
    ['all candidates, per source device, model-native', { capacityFactor: 1, candidates: 'all', scope: 'per-source-device', weights: 'model-native', maxExpertsPerToken: 3 }],
  ]
  for (const [name, options, routings] of expandedCases) {
    it(`expanded-drop: ${name}`, () => checkLowering(expandedDrop, options, { runs: 40, ...(routings ? { routings } : {}) }))
  }
  const rerouteCases: [string, object][] = [
    ['one round (score token drop), γ = 1', { capacityFactor: 1, rounds: 1 }],
    ['two rounds (default), tight', { capacityFactor: 0.5 }],
    ['three rounds, floor, model-native weights', { capacityFactor: 0.7, rounds: 3, rounding: 'floor', renormalize: 'model-native' }],
    ['eight rounds, round, renormalised over kept', { capacityFactor: 0.6, rounds: 8, rounding: 'round', renormalize: 'kept' }],
    ['per source device, decode capped, four rounds', { capacityFactor: 0.8, rounds: 4, scope: 'per-source-device', applyToDecode: true }],
  ]
  for (const [name, options] of rerouteCases) {
    it(`reroute: ${name}`, () => checkLowering(reroute, options, { runs: 40 }))
  }
  const spareCases: [string, object][] = [
    ['any expert with room, γ = 1', { capacityFactor: 1 }],
    ['tight, floor, model-native weights', { capacityFactor: 0.5, rounding: 'floor', renormalize: 'model-native' }],
    ['maxRank 2, round, renormalised over kept', { capacityFactor: 0.7, maxRank: 2, rounding: 'round', renormalize: 'kept' }],
    ['maxRank 5, per source device, decode capped', { capacityFactor: 0.8, maxRank: 5, scope: 'per-source-device', applyToDecode: true }],
  ]
  for (const [name, options] of spareCases) {
    it(`spare-capacity-reroute: ${name}`, () => checkLowering(spareCapacityReroute, options, { runs: 40 }))
  }
  // Batches past one workgroup: more than 256 pairs, candidates and overflow pairs per group,
  // up to 64 experts and k = 8 (every multi-chunk loop of the kernels).
  const big = { decode: false, minTokens: 120, maxTokens: 200, minExperts: 8, maxExperts: 64, maxTopK: 8, maxDevices: 8 }
  it('expanded-drop: large batches, all candidates, max 6 per token', () =>
    checkLowering(expandedDrop, { capacityFactor: 0.5, candidates: 'all', maxExpertsPerToken: 6, applyToDecode: true }, { runs: 8, routings: big }))
  it('expanded-drop: large batches, local candidates per source device', () =>
    checkLowering(expandedDrop, { capacityFactor: 1, candidates: 'local', scope: 'per-source-device' }, { runs: 8, routings: { ...big, minDevices: 2 } }))
  it('reroute: large batches, three rounds', () => checkLowering(reroute, { capacityFactor: 0.6, rounds: 3, applyToDecode: true }, { runs: 8, routings: big }))
  it('spare-capacity-reroute: large batches', () => checkLowering(spareCapacityReroute, { capacityFactor: 0.9 }, { runs: 10, routings: big }))
  it('spare-capacity-reroute: large batches, per source device, maxRank 12', () =>
    checkLowering(spareCapacityReroute, { capacityFactor: 1.1, maxRank: 12, scope: 'per-source-device', renormalize: 'kept' }, { runs: 10, routings: big }))
})

describe.runIf(adapter || required)('a widened routing through two device stages', () => {
  // expanded-drop widens the routing (up to E slots); reroute and spare-capacity-reroute run
  // on the widened routing on the device: the final pairs equal the host's two applies.
  const chains: [string, () => RoutingPolicy[]][] = [
    ['expanded-drop (all) then reroute', () => [createExpandedDrop({ capacityFactor: 1.5, candidates: 'all' }), createReroute({ capacityFactor: 0.8, rounds: 3 })]],
    ['expanded-drop (top-M) then spare-capacity-reroute', () => [createExpandedDrop({ capacityFactor: 1, candidates: 'global-topM', overselectionRatio: 2 }), createSpareCapacityReroute({ capacityFactor: 0.7, renormalize: 'kept' })]],
  ]
  for (const [name, make] of chains) {
    it(name, async () => {
      const backend = createWebGpuBackend({ weightsDtype: 'f32' })
      try {
        await fc.assert(
          fc.asyncProperty(routingCase({ maxTokens: 40, decode: false }), async (c) => {
            const r = c.routing
            const model: ModelShape = { experts: r.experts, topK: r.topK, hidden: 16, intermediate: 16, normalizeTopK: r.normalizeTopK }
            const placement = contiguousPlacement(r.experts, c.devices)
            const policies = make()
            let host: Routing = r
            for (const p of policies) host = p.apply(host, { placement, batchId: c.batchId, random: mulberry32(1) }).routing
            const router: Router = { name: 'given', route: () => r }
            const dispatcher = exactSizeDispatcher.create({}, { model, devices: c.devices, seed: c.seed }) as Dispatcher
            const pipeline = await backend.pipeline({ model, placement, seed: c.seed, router, policies, dispatcher, weights: { kind: 'seeded', seed: 1, std: 0.02 }, activationBytes: 2 } as never)
            try {
              expect(pipeline.stages.filter((s) => s.stage.startsWith('policy:')).map((s) => s.where)).toEqual(['device', 'device'])
              const res = await pipeline.forward({ id: c.batchId, tokens: r.tokens, scores: r.scores, ...(r.sourceDevice ? { sourceDevice: r.sourceDevice } : {}) }, { detail: 'full', output: 'norm' })
              const key = (p: { token: number; expert: number }) => `${p.token}:${p.expert}`
              const sort = (a: { token: number; expert: number }, b: { token: number; expert: number }) => a.token - b.token || a.expert - b.expert
              const h = pairsOf(host).sort(sort)
              const d = pairsOf(res.detail!.routing).sort(sort)
              expect(d.map(key)).toEqual(h.map(key))
              d.forEach((p, i) => expect(Math.abs(p.weight - h[i].weight)).toBeLessThanOrEqual(1e-6 * Math.max(1, Math.abs(h[i].weight))))
            } finally {
              await pipeline.dispose()
            }
          }),
          { numRuns: 25 },
        )
      } finally {
        await backend.dispose()
      }
    })
  }
})

describe('configurations that run on the host', () => {
  const model: ModelShape = { experts: 32, topK: 2, hidden: 16, intermediate: 16, normalizeTopK: false }
  const ctx = (devices: number): LoweringContext => ({ model, devices, placement: contiguousPlacement(32, devices), slotsIn: 2, subgroups: false, subgroupSize: null, maxWorkgroupSize: 256 })
  it('per-source-device scope lowers up to the devices whose capacities fit the stage parameters', () => {
    for (const [make, max] of [
      [(o: object) => createExpandedDrop({ candidates: 'all', ...o }), EXPANDED_MAX],
      [(o: object) => createReroute(o), REROUTE_MAX],
      [(o: object) => createSpareCapacityReroute(o), SPARE_MAX],
    ] as const) {
      expect(max).toBe(14)
      expect(make({ scope: 'per-source-device' }).lower!(ctx(max))).not.toBeNull()
      expect(make({ scope: 'per-source-device' }).lower!(ctx(max + 2))).toBeNull()
      expect(make({}).lower!(ctx(max + 2))).not.toBeNull()
    }
  })
  it('expanded-drop: local candidates the host rejects stay on the host, so its error reaches the caller', () => {
    expect(createExpandedDrop({ candidates: 'local' }).lower!(ctx(1))).toBeNull()
    expect(createExpandedDrop({ candidates: 'local', localExperts: [40] }).lower!(ctx(2))).toBeNull()
    expect(createExpandedDrop({ candidates: 'local', localExperts: [[0], [1]] }).lower!(ctx(4))).toBeNull()
    expect(createExpandedDrop({ candidates: 'local', localExperts: [[0], [1]] }).lower!(ctx(2))).not.toBeNull()
    expect(createExpandedDrop({ candidates: 'local' }).lower!(ctx(4))).not.toBeNull()
  })
  it('expanded-drop widens the routing to the candidates a token can keep', () => {
    const slots = (o: object, devices = 4) => (createExpandedDrop(o).lower!(ctx(devices)) as { slotsOut?: number }).slotsOut
    expect(slots({ candidates: 'all' })).toBe(32)
    expect(slots({ candidates: 'all', maxExpertsPerToken: 3 })).toBe(3)
    expect(slots({ candidates: 'all', maxExpertsPerToken: 1 })).toBe(2) // a skipped decode batch keeps its slots
    expect(slots({ candidates: 'global-topM', overselectionRatio: 3 })).toBe(8)
    expect(slots({ candidates: 'local' })).toBe(10) // 8 local experts per device + k
  })
})
