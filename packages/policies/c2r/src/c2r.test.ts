import { contiguousPlacement, createRegistry, mulberry32, softmaxTopK } from '@moe-route/core'
import fc from 'fast-check'
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { c2rRoute, c2rRouter } from './c2r.router.js'
import { deviceLimitPolicy, limitDevices } from './device-limit.js'
import { PACKAGE_NAME, PACKAGE_VERSION } from './meta.js'
import { collaborativeLists, profileCollaboration, profileFromCounts } from './profile.js'
import { profileFromJSON } from './profile-json.js'

function logits(tokens: number, experts: number, seed: number): Float32Array {
  const r = mulberry32(seed)
  return Float32Array.from({ length: tokens * experts }, () => r() * 6 - 3)
}

describe('collaboration profile', () => {
  it('counts ordered co-activations and lists collaborators without the expert itself', () => {
    const routing = { tokens: 3, slots: 2, expertIds: Int32Array.from([0, 1, 0, 2, 0, 1]) }
    const p = profileCollaboration(3, [[routing]])
    expect(p.tokens).toBe(3)
    expect(p.layers[0].counts).toEqual([
      [0, 2, 1],
      [2, 0, 0],
      [1, 0, 0],
    ])
    expect(p.layers[0].lists).toEqual([[1, 2], [0, 2], [0, 1]])
  })

  it('breaks ties by lower expert id and round-trips through JSON', () => {
    expect(collaborativeLists([[0, 5, 5, 1], [5, 0, 0, 0], [5, 0, 0, 0], [1, 0, 0, 0]])[0]).toEqual([1, 2, 3])
    const p = profileFromCounts([[[9, 1], [1, 9]]])
    expect(p.layers[0].counts).toEqual([[0, 1], [1, 0]])
    expect(profileFromJSON(JSON.parse(JSON.stringify(p)))).toEqual(p)
    expect(() => profileFromJSON({ layers: [] })).toThrow(/not a C2R profile/)
  })

  it('reads the recorded LLaMA-MoE co-activation (c2r-moe collaboration_data)', () => {
    // The same matrices @moe-route/workloads ships (diagonal 0, as in c2r-moe's pickles).
    const data = JSON.parse(readFileSync(new URL('../../../workloads/data/llama-moe-coactivation.json', import.meta.url), 'utf8'))
    const p = profileFromCounts(data.matrices.base)
    expect(p.layers).toHaveLength(32)
    for (const layer of p.layers) for (const [e, list] of layer.lists.entries()) expect([...list].sort()).toEqual([0, 1, 2, 3, 4, 5, 6, 7].filter((x) => x !== e))
  })
})

describe('c2r router', () => {
  const E = 16
  const lists = collaborativeLists(Array.from({ length: E }, (_, i) => Array.from({ length: E }, (_, j) => ((i * 5 + j * 3) % 7) + (i === j ? 0 : 1))))

  it('equals softmax top-k when T = E − 1 (no constraint)', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 6 }), fc.nat(), fc.boolean(), (k, seed, norm) => {
        const input = { tokens: 20, experts: E, logits: logits(20, E, seed) }
        const a = c2rRoute(input, { topK: k, topT: E - 1, collaborators: lists, normalizeTopK: norm })
        const b = softmaxTopK(input, k, norm)
        expect(a.expertIds).toEqual(b.expertIds)
        expect(a.weights).toEqual(b.weights)
      }),
      { numRuns: 40 },
    )
  })

  it('keeps the top-1 expert and takes the others only from its Top-T collaborators', () => {
    fc.assert(
      fc.property(fc.integer({ min: 2, max: 4 }), fc.integer({ min: 3, max: 8 }), fc.nat(), (k, T, seed) => {
        const input = { tokens: 30, experts: E, logits: logits(30, E, seed) }
        const r = c2rRoute(input, { topK: k, topT: T, collaborators: lists, normalizeTopK: false })
        for (let t = 0; t < 30; t++) {
          const row = Array.from(r.scores.subarray(t * E, (t + 1) * E))
          const e1 = row.indexOf(Math.max(...row))
          expect(r.expertIds[t * k]).toBe(e1)
          const partners = Array.from(r.expertIds.subarray(t * k + 1, (t + 1) * k))
          expect(new Set(partners).size).toBe(k - 1)
          for (const p of partners) expect(lists[e1].slice(0, T)).toContain(p)
          // Raw softmax weights.
          for (let j = 0; j < k; j++) expect(r.weights[t * k + j]).toBe(r.scores[t * E + r.expertIds[t * k + j]])
        }
      }),
      { numRuns: 30 },
    )
  })

  it('with T = k − 1 pairs the top-1 with its fixed first collaborators, renormalising when asked', () => {
    const scores = new Float32Array(E).fill(0.01)
    scores[3] = 0.5
    scores[4] = 0.3
    const r = c2rRoute({ tokens: 1, experts: E, scores }, { topK: 2, topT: 1, collaborators: lists, normalizeTopK: true })
    expect(Array.from(r.expertIds)).toEqual([3, lists[3][0]])
    expect(r.weights[0] + r.weights[1]).toBeCloseTo(1)
  })

  it('rejects a T outside k−1..E−1 and lists that name the expert itself', () => {
    const input = { tokens: 1, experts: E, logits: logits(1, E, 1) }
    expect(() => c2rRoute(input, { topK: 4, topT: 2, collaborators: lists, normalizeTopK: false })).toThrow(/topT/)
    const bad = lists.map((l, e) => (e === 2 ? [2, ...l.slice(1)] : l))
    expect(() => c2rRoute(input, { topK: 2, topT: 3, collaborators: bad, normalizeTopK: false })).toThrow(/expert 2/)
  })

  it('registers as a router plugin named c2r', () => {
    const registry = createRegistry([c2rRouter, deviceLimitPolicy])
    const model = { experts: E, topK: 2, hidden: 4, intermediate: 4, normalizeTopK: false }
    const router = registry.create('router', 'c2r', { topT: 3, collaborators: lists }, { model, devices: 1, seed: 0 })
    expect(router.name).toBe('c2r')
    expect(router.route({ tokens: 2, experts: E, logits: logits(2, E, 9) }).topK).toBe(2)
    expect(() => registry.create('router', 'c2r', { topT: 3, collaborators: [] }, { model, devices: 1, seed: 0 })).toThrow(/collaborator/)
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8'))
    expect([PACKAGE_NAME, PACKAGE_VERSION]).toEqual([pkg.name, pkg.version])
  })
})

describe('device-limit (Occult router-score pruning)', () => {
  const E = 16
  const placement = contiguousPlacement(E, 8)
  const dev = (e: number) => placement.replicas[e][0]

  it('leaves routings alone when N_d covers every device', () => {
    const r = softmaxTopK({ tokens: 50, experts: E, logits: logits(50, E, 3) }, 4, false)
    const out = limitDevices(r, placement, 8)
    expect(out.routing.expertIds).toEqual(r.expertIds)
    expect(out.dropped).toEqual([])
    expect(out.rerouted).toEqual([])
  })

  it('sends each token to at most N_d devices, keeps k pairs and the top-1', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 3 }), fc.integer({ min: 2, max: 6 }), fc.nat(), fc.boolean(), (nd, k, seed, norm) => {
        const r = softmaxTopK({ tokens: 40, experts: E, logits: logits(40, E, seed) }, k, norm)
        const out = limitDevices(r, placement, nd)
        for (let t = 0; t < 40; t++) {
          const ids = Array.from(out.routing.expertIds.subarray(t * k, (t + 1) * k)).filter((e) => e >= 0)
          expect(new Set(ids.map(dev)).size).toBeLessThanOrEqual(nd)
          expect(ids).toContain(r.expertIds[t * k])
          // 2 experts per device: N_d devices hold 2·N_d experts.
          expect(ids.length).toBe(Math.min(k, 2 * nd))
          if (norm) expect(Array.from(out.routing.weights.subarray(t * k, (t + 1) * k)).reduce((a, b) => a + b)).toBeCloseTo(1, 5)
        }
        expect(out.rerouted!.length + out.dropped.length).toBeGreaterThanOrEqual(0)
      }),
      { numRuns: 40 },
    )
  })

  it('replaces an out-of-scope expert by the next-best in-scope one', () => {
    // Device of e = ⌊e/2⌋. Scores: 0 > 5 > 1 > rest. With N_d = 1 only device 0 (experts 0, 1) is allowed.
    const scores = new Float32Array(E).fill(0.01)
    scores[0] = 0.5
    scores[5] = 0.3
    scores[1] = 0.1
    const r = softmaxTopK({ tokens: 1, experts: E, scores }, 2, false)
    const out = limitDevices(r, placement, 1)
    expect(Array.from(out.routing.expertIds)).toEqual([0, 1])
    expect(out.rerouted).toEqual([{ token: 0, from: 5, to: 1, weight: scores[5], policy: 'device-limit' }])
  })
})
