/**
 * GPU lowerings of the reroute family (expanded-drop, reroute, spare-capacity-reroute)
 * against their host `apply` (checkLowering) on a real WebGPU device: Mesa lavapipe in CI,
 * where a missing adapter fails instead of skipping. Each option set is one test; together
 * they cover every option value of the three policies.
 */
import expandedDrop from '@moe-route/policy-expanded-drop'
import reroute from '@moe-route/policy-reroute'
import spareCapacityReroute from '@moe-route/policy-spare-capacity-reroute'
import { probeAdapter } from '@moe-route/backend-webgpu'
import { describe, it, vi } from 'vitest'
import { checkLowering } from './lowering.js'

vi.setConfig({ testTimeout: 180_000 })
const required = Boolean(process.env.CI) || process.env.MOE_ROUTE_REQUIRE_WEBGPU === '1'
const adapter = await probeAdapter()
if (!adapter && !required) console.warn('[@moe-route/testkit] no WebGPU adapter: skipping the lowering checks (install Mesa lavapipe: scripts/install-lavapipe.sh)')

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
})
