import { createMoe, isMoeError } from '@moe-route/core'
import { routingFromRows } from '@moe-route/core/testing'
import { policyConformance } from '@moe-route/testkit'
import { describe, expect, it } from 'vitest'
import pkg from './package.json' with { type: 'json' }
import { runDemo } from './demo.mjs'
import entropyDropPolicy, { entropyDrop, tokenEntropy } from './src/index.js'

const defaults = { capacityFactor: 1.25, rounding: 'ceil' as const, skipDecode: true }

describe('entropy-drop', () => {
  it('measures routing entropy in nats (0 one-hot, ln E uniform)', () => {
    const r = routingFromRows([[1, 0, 0, 0], [0.25, 0.25, 0.25, 0.25], [0.5, 0.5, 0, 0]], { topK: 1 })
    const h = tokenEntropy(r)
    expect(h[0]).toBe(0)
    expect(h[1]).toBeCloseTo(Math.log(4), 12)
    expect(h[2]).toBeCloseTo(Math.log(2), 12)
  })

  it('drops the pairs of the most uncertain tokens first', () => {
    // 4 tokens, 2 experts, k = 1: all pick expert 0; capacity = ceil(0.5·1·4/2) = 1.
    const r = routingFromRows([[0.6, 0.4], [0.99, 0.01], [0.8, 0.2], [0.55, 0.45]], { topK: 1 })
    const out = entropyDrop(r, { ...defaults, capacityFactor: 0.5 })
    expect(out.capacity).toBe(1)
    expect(Array.from(out.routing.expertIds)).toEqual([-1, 0, -1, -1])
    expect(out.dropped.map((d) => d.token)).toEqual([2, 0, 3])
    expect(out.dropped.every((d) => d.reason === 'capacity' && d.policy === 'entropy-drop')).toBe(true)
  })

  it('breaks entropy ties by gate score, then token index', () => {
    const r = routingFromRows([[0.5, 0.5], [0.5, 0.5], [0.5, 0.5]], { topK: 1 })
    const out = entropyDrop(r, { ...defaults, capacityFactor: 1 / 3, rounding: 'ceil' })
    expect(out.capacity).toBe(1)
    expect(Array.from(out.routing.expertIds)).toEqual([0, -1, -1])
  })

  it('leaves decode batches alone unless told otherwise', () => {
    const r = routingFromRows([[0.9, 0.1], [0.8, 0.2], [0.7, 0.3]], { topK: 1, decode: true })
    expect(entropyDrop(r, { ...defaults, capacityFactor: 0.5 })).toMatchObject({ dropped: [], skipped: 'decode batch', capacity: null })
    expect(entropyDrop(r, { ...defaults, capacityFactor: 0.5, skipDecode: false }).dropped.length).toBe(2)
  })

  it('is configured from a config and rejects bad options naming the plugin', () => {
    const model = { experts: 4, topK: 2, hidden: 8, intermediate: 8 }
    const engine = createMoe({ plugins: [entropyDropPolicy], config: { model, policies: [{ use: 'moe-route-policy-entropy-drop', options: { capacityFactor: 0.5 } }] } })
    const r = engine.route({ id: 0, tokens: 8, scores: new Float32Array(32).fill(0.25) })
    expect(r.telemetry.policies[0]).toMatchObject({ policy: 'entropy-drop', capacity: 2 })
    let error: unknown
    try {
      createMoe({ plugins: [entropyDropPolicy], config: { model, policies: [{ use: 'entropy-drop', options: { capacityFactor: -1, rounding: 'up' } }] } })
    } catch (e) {
      error = e
    }
    expect(isMoeError(error) && error.details.issues?.map((i) => [i.path, i.plugin])).toEqual([
      ['/policies/0/options/capacityFactor', 'entropy-drop'],
      ['/policies/0/options/rounding', 'entropy-drop'],
    ])
  })

  it('npm start: the demo drops higher-entropy tokens than it keeps', () => {
    const lines: string[] = []
    const s = runDemo({ log: (l: string) => lines.push(l) })
    expect(lines).toHaveLength(5)
    expect(s.policy).toBe('moe-route-policy-entropy-drop@1.0.0')
    expect(s.droppedFraction).toBeGreaterThan(0.02)
    expect(s.droppedFraction).toBeLessThan(0.5)
    expect(s.meanEntropyDropped).toBeGreaterThan(s.meanEntropyKept)
  })
})

describe('testkit conformance', () => {
  void policyConformance(entropyDropPolicy, {
    describe,
    it,
    packageJson: pkg,
    options: [{ capacityFactor: 0.5, rounding: 'floor' }, { capacityFactor: 2, skipDecode: false }],
    invalidOptions: [{ capacityFactor: 0 }],
  })
})
