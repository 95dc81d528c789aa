import { describe, expect, it } from 'vitest'
import { createMoe, createMoeContainer } from '../container.js'
import { definePolicy } from '../plugin/define.js'
import { routingFromPairs, pairsOf } from '../routing/routing.js'
import { randomLogits } from '../testing/index.js'
import { isMoeError } from '../errors.js'
import { MoeEngine } from './moe-engine.js'

const model = { experts: 4, topK: 2, hidden: 8, intermediate: 16, normalizeTopK: false }

// Drops every pair of expert 0 (a tiny policy to check engine accounting).
const dropZero = definePolicy<Record<string, never>>({
  meta: { name: 'drop-zero', package: 'test', version: '0.0.0', core: '^0.1.0', schema: { type: 'object' }, defaultOptions: {} },
  create: () => ({
    name: 'drop-zero',
    apply(routing) {
      const pairs = pairsOf(routing)
      const kept = pairs.filter((p) => p.expert !== 0)
      const dropped = pairs.filter((p) => p.expert === 0).map((p) => ({ ...p, reason: 'test', policy: 'drop-zero' }))
      return { routing: routingFromPairs(routing, kept), dropped }
    },
  }),
})
const broken = definePolicy<Record<string, never>>({
  meta: { name: 'broken', package: 'test', version: '0.0.0', core: '^0.1.0', schema: { type: 'object' }, defaultOptions: {} },
  create: () => ({ name: 'broken', apply: () => { throw new Error('kaboom') } }),
})

describe('MoeEngine', () => {
  it('routes scores through policies and reports telemetry', () => {
    const engine = createMoe({ config: { model, policies: [{ use: 'drop-zero' }] }, plugins: [dropZero] })
    // token 0 → experts 0,1; token 1 → 2,3; token 2 → 0,2
    const scores = new Float32Array([0.4, 0.3, 0.2, 0.1, 0.1, 0.2, 0.3, 0.4, 0.5, 0.1, 0.3, 0.1])
    const r = engine.route({ id: 7, tokens: 3, scores })
    const t = r.telemetry
    expect(t.batchId).toBe(7)
    expect(t.loadBefore).toEqual([2, 1, 2, 1])
    expect(t.loadAfter).toEqual([0, 1, 2, 1])
    expect(t.droppedPairs).toBe(2)
    expect(t.droppedFraction).toBeCloseTo(2 / 6)
    expect(t.gateMassKept).toBeCloseTo((0.3 + 0.3 + 0.4 + 0.3) / (0.4 + 0.3 + 0.3 + 0.4 + 0.5 + 0.3), 5)
    expect(t.maxMeanBefore).toBeCloseTo(2 / 1.5)
    expect(t.policies).toEqual([{ policy: 'drop-zero', dropped: 2, rerouted: 0, added: 0, capacity: null }])
    expect(t.droppedBy).toEqual([{ policy: 'drop-zero', reason: 'test', pairs: 2 }])
    expect(r.dropped.map((d) => [d.token, d.expert])).toEqual([[0, 0], [2, 0]])
    expect(Array.from(r.plan.counts)).toEqual([0, 1, 2, 1])
  })

  it('rejects bad batches with stable codes', () => {
    const engine = createMoe({ config: { model } })
    const codes = [
      () => engine.route({ id: 0, tokens: 2, logits: new Float32Array(7) }),
      () => engine.route({ id: 0, tokens: 1, logits: new Float32Array([0, NaN, 0, 0]) }),
      () => engine.route({ id: 0, tokens: 1 }),
      () => engine.route({ id: 0, tokens: -1, logits: new Float32Array(0) }),
      () => engine.route({ id: 0, tokens: 1, logits: new Float32Array(4), sourceDevice: new Int32Array([3]) }),
    ].map((f) => {
      try {
        f()
        return 'no error'
      } catch (e) {
        return isMoeError(e) ? e.code : String(e)
      }
    })
    expect(codes).toEqual([
      'MOE_ROUTE_ERR_SHAPE_MISMATCH',
      'MOE_ROUTE_ERR_INPUT_NOT_FINITE',
      'MOE_ROUTE_ERR_INPUT_INVALID',
      'MOE_ROUTE_ERR_INPUT_INVALID',
      'MOE_ROUTE_ERR_INPUT_INVALID',
    ])
  })

  it('names the plugin that threw', () => {
    const engine = createMoe({ config: { model, policies: [{ use: 'broken' }] }, plugins: [broken] })
    try {
      engine.route({ id: 3, tokens: 1, logits: randomLogits(1, 4) })
      expect.unreachable()
    } catch (e) {
      expect(isMoeError(e) && e.code).toBe('MOE_ROUTE_ERR_PLUGIN_FAILED')
      expect((e as { details: object }).details).toMatchObject({ plugin: 'broken', hook: 'apply' })
    }
  })

  it('is resolved from a container with every service injected', () => {
    const c = createMoeContainer({ config: { model, devices: 2 } })
    const engine = c.resolve(MoeEngine)
    expect(engine.router.name).toBe('softmax-top-k')
    expect(engine.dispatcher.name).toBe('exact-size')
    expect(engine.placement.replicas).toEqual([[0], [0], [1], [1]])
    expect(engine.policies).toEqual([])
  })
})

describe('policy fallback', () => {
  it('runs the configured fallback when a policy throws, and says so in telemetry', () => {
    const engine = createMoe({
      config: { model, policies: [{ use: 'broken', fallback: { use: 'drop-zero' } }] },
      plugins: [broken, dropZero],
    })
    const r = engine.route({ id: 1, tokens: 2, scores: new Float32Array([0.4, 0.3, 0.2, 0.1, 0.1, 0.2, 0.3, 0.4]) })
    expect(r.telemetry.droppedPairs).toBe(1)
    expect(r.telemetry.policies[0].fallback).toMatchObject({ from: 'broken', to: 'drop-zero', error: { code: 'MOE_ROUTE_ERR_PLUGIN_FAILED' } })
    expect(r.telemetry.policies[0].fallback!.error.message).toContain('kaboom')
  })
})
