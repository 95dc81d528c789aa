/**
 * GPU lowerings of @moe-route/policy-c2r against their host implementations on a real WebGPU
 * device (Mesa lavapipe in CI, where a missing adapter fails instead of skipping): the `c2r`
 * router (checkRouterLowering: every Top-T from k − 1 to E − 1, lists from random
 * permutations and from profiles, renormalised or raw weights) and the `device-limit` policy
 * (checkLowering: N_d 1…3, contiguous and replicated placements, routings with holes that make
 * it re-add experts). Core's softmax-top-k router runs through the same router harness first.
 */
import { mulberry32, softmaxTopKRouter, type ModelShape, type PlacementMap } from '@moe-route/core'
import { c2rRouter, deviceLimitPolicy, profileFromCounts } from '@moe-route/policy-c2r'
import { probeAdapter } from '@moe-route/backend-webgpu'
import { describe, it, vi } from 'vitest'
import { checkLowering, checkRouterLowering } from '@moe-route/testkit'

vi.setConfig({ testTimeout: 180_000 })
const required = Boolean(process.env.CI) || process.env.MOE_ROUTE_REQUIRE_WEBGPU === '1'
const adapter = await probeAdapter()

/** Per expert, the other experts in a seeded random order (what a profile's lists look like). */
function randomLists(experts: number, seed: number): number[][] {
  const rand = mulberry32(seed)
  return Array.from({ length: experts }, (_, e) => {
    const others = Array.from({ length: experts }, (_, i) => i).filter((i) => i !== e)
    for (let i = others.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1))
      ;[others[i], others[j]] = [others[j], others[i]]
    }
    return others
  })
}

/** Lists of a profile of seeded co-activation counts in 0..3 (many ties: lower id first). */
function profiledLists(experts: number, seed: number): number[][] {
  const rand = mulberry32(seed ^ 0x5bd1e995)
  const counts = Array.from({ length: experts }, () => Array.from({ length: experts }, () => Math.floor(rand() * 4)))
  return profileFromCounts([counts]).layers[0].lists.map((l) => [...l])
}

/** Top-T between k − 1 and E − 1 drawn from the seed. */
const someTopT = (m: ModelShape, seed: number) => m.topK - 1 + (seed % (m.experts - m.topK + 1))

/**
 * Expert e's primary on device e mod D, a second replica on its contiguous block's device (the
 * next one when that is the primary): the two replicas partition the experts differently.
 */
const stridedReplicated = (experts: number, devices: number): PlacementMap => ({
  devices,
  experts,
  replicas: Array.from({ length: experts }, (_, e) => {
    if (devices === 1) return [0]
    const block = Math.floor((e * devices) / experts)
    return [e % devices, block === e % devices ? (block + 1) % devices : block]
  }),
  strategy: 'strided-replicated',
})

describe.runIf(adapter || required)(`GPU lowerings of policy-c2r on ${adapter ?? 'no adapter'}`, () => {
  it('router harness: core softmax-top-k (model normalisation)', () => checkRouterLowering(softmaxTopKRouter, { normalizeTopK: null }, { runs: 30 }))

  const routerCases: [string, (m: ModelShape, seed: number) => object][] = [
    ['c2r: random lists, Top-T between k − 1 and E − 1, model normalisation', (m, s) => ({ topT: someTopT(m, s), collaborators: randomLists(m.experts, s), normalizeTopK: null })],
    ['c2r: tightest Top-T = k − 1, renormalised', (m, s) => ({ topT: m.topK - 1, collaborators: randomLists(m.experts, s), normalizeTopK: true })],
    ['c2r: Top-T = E − 1 (plain top-k), raw probabilities', (m, s) => ({ topT: m.experts - 1, collaborators: randomLists(m.experts, s), normalizeTopK: false })],
    ['c2r: lists of a profile with tied counts', (m, s) => ({ topT: someTopT(m, s), collaborators: profiledLists(m.experts, s), normalizeTopK: null })],
  ]
  for (const [name, options] of routerCases) {
    it(name, () => checkRouterLowering(c2rRouter, options, { runs: 40 }))
  }
  it('c2r: E = 64, k = 8, Top-T 30 (paper-like shape)', () =>
    checkRouterLowering(c2rRouter, (m, s) => ({ topT: 30, collaborators: randomLists(m.experts, s), normalizeTopK: null }), {
      runs: 8,
      routings: { minExperts: 64, maxExperts: 64, maxTopK: 8, maxTokens: 24 },
    }))

  const limitCases: [string, object, Parameters<typeof checkLowering>[2]][] = [
    ['device-limit: N_d = 1, contiguous', { maxDevices: 1 }, { routings: { minDevices: 2 } }],
    ['device-limit: N_d = 2 (default), contiguous, k up to 6', { maxDevices: 2 }, { routings: { minDevices: 2, maxTopK: 6, maxDevices: 6 } }],
    ['device-limit: N_d = 3, four to six devices, k up to 6', { maxDevices: 3 }, { routings: { minDevices: 4, maxDevices: 6, maxTopK: 6 } }],
    ['device-limit: N_d = 1, replicated placement (primary replica counts)', { maxDevices: 1 }, { routings: { minDevices: 2 }, placement: stridedReplicated }],
    ['device-limit: N_d = 2, routings with holes (re-added experts)', { maxDevices: 2 }, { routings: { minDevices: 2, holes: true } }],
  ]
  for (const [name, options, settings] of limitCases) {
    it(name, () => checkLowering(deviceLimitPolicy, options, { runs: 40, ...settings }))
  }
})
