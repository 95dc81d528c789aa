import { createMoe, createRouting, ErrorCodes, isMoeError, pairsOf, PluginRegistry, type Routing } from '@moe-route/core'
import { policyContext, routingFromRows } from '@moe-route/core/testing'
import { describe, expect, it } from 'vitest'
import capacityDropDefault, { capacityDrop, createTokenDrop, defaultOptions, schema, tokenDrop, type CapacityDropOptions } from './index.js'

/** Kept (token, expert) pairs, sorted. */
const kept = (r: Routing) => pairsOf(r).map((p) => [p.token, p.expert]).sort((a, b) => a[0] - b[0] || a[1] - b[1])
const weightOf = (r: Routing, token: number, expert: number) => pairsOf(r).find((p) => p.token === token && p.expert === expert)?.weight
const droppedOf = (o: { dropped: readonly { token: number; expert: number }[] }) => o.dropped.map((p) => [p.token, p.expert])

// E = 4, k = 2, T = 4. Top-2 per token (score):
//   t0: e0 .5, e1 .3    t1: e0 .6, e2 .2    t2: e0 .4, e1 .35    t3: e0 .7, e3 .2
// Loads: e0 4, e1 2, e2 1, e3 1. N̄ = k·T/E = 2.
const ROWS = [
  [0.5, 0.3, 0.1, 0.1],
  [0.6, 0.1, 0.2, 0.1],
  [0.4, 0.35, 0.15, 0.1],
  [0.7, 0.05, 0.05, 0.2],
]
const ctx = policyContext(4)
const run = (options: Partial<CapacityDropOptions>, routing: Routing = routingFromRows(ROWS, { topK: 2 })) =>
  createTokenDrop(options).apply(routing, ctx)

describe('capacity-drop: hand-computed cases', () => {
  it('score priority at γ = 1 (C = 2): e0 keeps t3 (.7) and t1 (.6), drops t0 and t2', () => {
    const out = run({ capacityFactor: 1 })
    expect(out.capacity).toBe(2)
    expect(droppedOf(out)).toEqual([[0, 0], [2, 0]])
    expect(out.dropped.every((d) => d.reason === 'capacity' && d.policy === 'capacity-drop')).toBe(true)
    // A dropped pair removes only that pair: t0 and t2 keep e1.
    expect(kept(out.routing)).toEqual([[0, 1], [1, 0], [1, 2], [2, 1], [3, 0], [3, 3]])
  })

  it('first priority keeps the earliest tokens (paper "Order"): e0 keeps t0, t1', () => {
    expect(droppedOf(run({ capacityFactor: 1, priority: 'first' }))).toEqual([[2, 0], [3, 0]])
  })

  it('last priority keeps the latest tokens (paper "Reverse Order"): e0 keeps t2, t3', () => {
    expect(droppedOf(run({ capacityFactor: 1, priority: 'last' }))).toEqual([[0, 0], [1, 0]])
  })

  it('random priority keeps the highest seeded keys (draws in token, then slot order)', () => {
    // Pairs in order: (0,0) (0,1) (1,0) (1,2) (2,0) (2,1) (3,0) (3,3)
    const draws = [0.9, 0.5, 0.2, 0.5, 0.3, 0.5, 0.95, 0.5]
    let i = 0
    const out = createTokenDrop({ capacityFactor: 1, priority: 'random' }).apply(routingFromRows(ROWS, { topK: 2 }), {
      ...ctx,
      random: () => draws[i++],
    })
    // e0 keys: t0 .9, t1 .2, t2 .3, t3 .95 → keeps t3, t0.
    expect(droppedOf(out)).toEqual([[1, 0], [2, 0]])
    expect(i).toBe(8)
  })

  it('γ = 0.5 (C = 1): a token can lose every pair and then contributes nothing', () => {
    const out = run({ capacityFactor: 0.5 })
    expect(out.capacity).toBe(1)
    // e0 keeps t3; e1 keeps t2 (.35 > .3); e2, e3 are within capacity.
    expect(droppedOf(out)).toEqual([[0, 0], [0, 1], [1, 0], [2, 0]])
    expect(kept(out.routing)).toEqual([[1, 2], [2, 1], [3, 0], [3, 3]])
    expect(out.routing.expertIds.slice(0, 2)).toEqual(new Int32Array([-1, -1]))
    expect(Array.from(out.routing.weights.slice(0, 2))).toEqual([0, 0])
  })

  it('rounding: γ = 0.6 gives raw 1.2 → ceil 2, floor 1, round 1', () => {
    expect(run({ capacityFactor: 0.6 }).capacity).toBe(2)
    expect(run({ capacityFactor: 0.6, rounding: 'floor' }).capacity).toBe(1)
    expect(run({ capacityFactor: 0.6, rounding: 'round' }).capacity).toBe(1)
    expect(run({ capacityFactor: 0.75, rounding: 'round' }).capacity).toBe(2) // 1.5 rounds half up
    expect(droppedOf(run({ capacityFactor: 0.6, rounding: 'floor' }))).toEqual([[0, 0], [0, 1], [1, 0], [2, 0]])
  })

  it('ties at the capacity boundary break by lower token index', () => {
    // Three tokens with equal scores all pick e0 (router tie → lower expert); C = ceil(0.5·1·3/2) = 1.
    const r = routingFromRows([[0.5, 0.5], [0.5, 0.5], [0.5, 0.5]], { topK: 1 })
    const out = createTokenDrop({ capacityFactor: 0.5 }).apply(r, policyContext(2))
    expect(kept(out.routing)).toEqual([[0, 0]])
    expect(droppedOf(out)).toEqual([[1, 0], [2, 0]])
  })

  it('renormalize none / model-native / kept on a raw-softmax model', () => {
    expect(weightOf(run({ capacityFactor: 1 }).routing, 0, 1)).toBeCloseTo(0.3, 6)
    expect(weightOf(run({ capacityFactor: 1, renormalize: 'model-native' }).routing, 0, 1)).toBeCloseTo(0.3, 6)
    const k = run({ capacityFactor: 1, renormalize: 'kept' }).routing
    expect(weightOf(k, 0, 1)).toBeCloseTo(1, 6) // t0 kept only e1
    expect(weightOf(k, 1, 0)).toBeCloseTo(0.6 / 0.8, 6) // t1 kept both: .6 / (.6 + .2)
  })

  it('renormalize on a top-k-normalising model (Mixtral convention)', () => {
    const r = routingFromRows(ROWS, { topK: 2, normalizeTopK: true })
    // none: t0's e1 keeps its router weight .3 / .8.
    expect(weightOf(run({ capacityFactor: 1 }, r).routing, 0, 1)).toBeCloseTo(0.375, 6)
    // kept: renormalised over the kept experts.
    expect(weightOf(run({ capacityFactor: 1, renormalize: 'kept' }, r).routing, 0, 1)).toBeCloseTo(1, 6)
    // model-native recomputes from the scores with the original top-k denominator, even when
    // the incoming weights were changed by an earlier stage.
    const flat = createRouting({ ...r, weights: new Float32Array(r.weights.length).fill(1) })
    const out = run({ capacityFactor: 1, renormalize: 'model-native' }, flat).routing
    expect(weightOf(out, 0, 1)).toBeCloseTo(0.375, 6)
    expect(weightOf(out, 3, 3)).toBeCloseTo(0.2 / 0.9, 6)
    expect(weightOf(run({ capacityFactor: 1 }, flat).routing, 0, 1)).toBe(1)
  })

  it('decode batches are skipped unless applyToDecode', () => {
    const r = routingFromRows(ROWS, { topK: 2, decode: true })
    const skipped = run({ capacityFactor: 0.5 }, r)
    expect(skipped.routing).toBe(r)
    expect(skipped.dropped).toEqual([])
    expect(skipped.skipped).toMatch(/decode/)
    expect(skipped.capacity).toBeNull()
    expect(droppedOf(run({ capacityFactor: 0.5, applyToDecode: true }, r))).toEqual([[0, 0], [0, 1], [1, 0], [2, 0]])
  })

  it('per-source-device scope: each device caps its own T_d = 2 tokens (C_d = 1 at γ = 1)', () => {
    // Device 0: t0, t2. Device 1: t1, t3.
    const r = routingFromRows(ROWS, { topK: 2, sourceDevice: [0, 1, 0, 1] })
    const out = run({ capacityFactor: 1, scope: 'per-source-device' }, r)
    expect(out.capacity).toBe(1)
    // dev 0: e0 {t0 .5, t2 .4} keeps t0; e1 {t0 .3, t2 .35} keeps t2. dev 1: e0 {t1 .6, t3 .7} keeps t3.
    expect(droppedOf(out)).toEqual([[0, 1], [1, 0], [2, 0]])
    // The global scope on the same batch drops other pairs.
    expect(droppedOf(run({ capacityFactor: 1 }, r))).toEqual([[0, 0], [2, 0]])
    // Without source devices every token is on device 0: same as global.
    expect(droppedOf(run({ capacityFactor: 1, scope: 'per-source-device' }))).toEqual([[0, 0], [2, 0]])
  })

  it('within capacity nothing changes and the outcome reports capacity', () => {
    const r = routingFromRows(ROWS, { topK: 2 })
    const out = run({ capacityFactor: 2 }, r)
    expect(out.capacity).toBe(4)
    expect(out.dropped).toEqual([])
    expect(kept(out.routing)).toEqual(kept(r))
    expect(out.routing.weights).toEqual(r.weights)
  })

  it('an empty batch gives an empty outcome', () => {
    const r = createRouting({ tokens: 0, experts: 4, topK: 2, expertIds: new Int32Array(0), weights: new Float32Array(0), scores: new Float32Array(0), normalizeTopK: false })
    const out = run({}, r)
    expect(out.dropped).toEqual([])
    expect(out.routing.tokens).toBe(0)
    expect(out.capacity).toBe(0)
  })
})

describe('capacity-drop: errors and plugin shape', () => {
  const registry = new PluginRegistry().register(capacityDrop)

  it('is exported as default and named, with meta matching the package', () => {
    expect(capacityDropDefault).toBe(capacityDrop)
    expect(capacityDrop.kind).toBe('policy')
    expect(capacityDrop.meta).toMatchObject({ name: 'capacity-drop', package: '@moe-route/policy-capacity', version: '0.1.0', core: '^0.1.0' })
    expect(capacityDrop.meta.schema).toBe(schema)
    expect(capacityDrop.meta.defaultOptions).toBe(defaultOptions)
  })

  it.each([
    [{ capacityFactor: 0 }, '/options/capacityFactor'],
    [{ capacityFactor: -1 }, '/options/capacityFactor'],
    [{ priority: 'fifo' }, '/options/priority'],
    [{ rounding: 'up' }, '/options/rounding'],
    [{ renormalize: 'always' }, '/options/renormalize'],
    [{ scope: 'device' }, '/options/scope'],
    [{ capacity: 2 }, '/options/capacity'],
  ])('rejects %j with MOE_ROUTE_ERR_PLUGIN_OPTIONS_INVALID at %s', (options, path) => {
    try {
      registry.resolveOptions(capacityDrop, options)
      expect.unreachable()
    } catch (e) {
      expect(isMoeError(e) && e.code).toBe(ErrorCodes.PLUGIN_OPTIONS_INVALID)
      expect(isMoeError(e) && e.details.plugin).toBe('capacity-drop')
      expect(isMoeError(e) && e.details.issues?.map((i) => i.path)).toContain(path)
    }
  })

  it('accepts the defaults and a full option set', () => {
    expect(registry.resolveOptions(capacityDrop, undefined)).toEqual(defaultOptions)
    expect(registry.resolveOptions(capacityDrop, { capacityFactor: 2, priority: 'last', rounding: 'floor', renormalize: 'kept', scope: 'per-source-device', applyToDecode: true })).toMatchObject({ capacityFactor: 2 })
  })

  it('k > E is a clear error naming the policy', () => {
    const r = routingFromRows(ROWS, { topK: 2 })
    const bad = { ...r, topK: 5 }
    try {
      tokenDrop(bad, defaultOptions)
      expect.unreachable()
    } catch (e) {
      expect(isMoeError(e) && e.code).toBe(ErrorCodes.TOPK_EXCEEDS_EXPERTS)
      expect(isMoeError(e) && e.details.plugin).toBe('capacity-drop')
    }
  })

  it('random priority without a generator is a clear error', () => {
    expect(() => tokenDrop(routingFromRows(ROWS, { topK: 2 }), { ...defaultOptions, priority: 'random' })).toThrow(/random generator/)
  })

  it('runs inside the engine: telemetry counts the drops', () => {
    const engine = createMoe({
      plugins: [capacityDrop],
      config: { model: { experts: 4, topK: 2, hidden: 8, intermediate: 8 }, policies: [{ use: 'capacity-drop', options: { capacityFactor: 1 } }] },
    })
    const res = engine.route({ id: 7, tokens: 4, scores: new Float32Array(ROWS.flat()) })
    expect(res.dropped.map((d) => [d.token, d.expert])).toEqual([[0, 0], [2, 0]])
    expect(res.telemetry.droppedPairs).toBe(2)
    expect(res.telemetry.droppedFraction).toBe(2 / 8)
    expect(res.telemetry.policies[0]).toMatchObject({ policy: 'capacity-drop', dropped: 2, capacity: 2 })
    expect(res.telemetry.loadAfter).toEqual([2, 2, 1, 1])
  })
})
