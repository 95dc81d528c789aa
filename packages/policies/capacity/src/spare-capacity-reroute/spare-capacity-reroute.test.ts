import { createMoe, ErrorCodes, isMoeError, pairsOf, PluginRegistry, type Routing } from '@moe-route/core'
import { policyContext, routingFromRows } from '@moe-route/core/testing'
import { describe, expect, it } from 'vitest'
import spareDefault, { applySpareCapacityReroute, createSpareCapacityReroute, defaultOptions, schema, spareCapacityReroute, type SpareCapacityRerouteOptions } from './index.js'

const kept = (r: Routing) => pairsOf(r).map((p) => [p.token, p.expert]).sort((a, b) => a[0] - b[0] || a[1] - b[1])
const moves = (o: { rerouted?: readonly { token: number; from: number; to: number }[] }) => (o.rerouted ?? []).map((m) => [m.token, m.from, m.to])
const drops = (o: { dropped: readonly { token: number; expert: number; reason: string }[] }) => o.dropped.map((d) => [d.token, d.expert, d.reason])

// E = 4, k = 1, every token's top-1 is e0; γ = 1 → C = 1.
const PILE = [
  [0.5, 0.3, 0.1, 0.1],
  [0.6, 0.1, 0.25, 0.05],
  [0.4, 0.35, 0.15, 0.1],
  [0.7, 0.05, 0.05, 0.2],
]
// E = 4, k = 2 (the capacity-drop example).
const ROWS = [
  [0.5, 0.3, 0.1, 0.1],
  [0.6, 0.1, 0.2, 0.1],
  [0.4, 0.35, 0.15, 0.1],
  [0.7, 0.05, 0.05, 0.2],
]
const ctx = policyContext(4)
const run = (o: Partial<SpareCapacityRerouteOptions>, r: Routing) => createSpareCapacityReroute(o).apply(r, ctx)

describe('spare-capacity-reroute: hand-computed cases', () => {
  it('moves each overflow pair, best score first, to the best expert with room', () => {
    // e0 keeps t3. Overflow by score: t1 (.6) → e2 (.25); t0 (.5) → e1 (.3); t2 (.4): e1, e2 full → e3 (.1).
    const out = run({ capacityFactor: 1 }, routingFromRows(PILE, { topK: 1 }))
    expect(kept(out.routing)).toEqual([[0, 1], [1, 2], [2, 3], [3, 0]])
    expect(moves(out)).toEqual([[0, 0, 1], [1, 0, 2], [2, 0, 3]])
    expect(out.dropped).toEqual([])
    expect(out.capacity).toBe(1)
    expect(out.rerouted?.every((m) => m.policy === 'spare-capacity-reroute')).toBe(true)
  })

  it('maxRank limits moves to the token\'s best experts; the rest are dropped', () => {
    // maxRank 2: t2's top-2 are e0, e1, both full → dropped.
    const out = run({ capacityFactor: 1, maxRank: 2 }, routingFromRows(PILE, { topK: 1 }))
    expect(kept(out.routing)).toEqual([[0, 1], [1, 2], [3, 0]])
    expect(drops(out)).toEqual([[2, 0, 'reroute-exhausted']])
  })

  it('k = 2: a token never gets an expert it already uses', () => {
    // C = 2. e0 keeps t3, t1; overflow t0 (.5) and t2 (.4). t0: e0, e1 are its own → e2 (load 1 → 2).
    // t2: e1 its own, e2 now full → e3.
    const out = run({ capacityFactor: 1 }, routingFromRows(ROWS, { topK: 2 }))
    expect(kept(out.routing)).toEqual([[0, 1], [0, 2], [1, 0], [1, 2], [2, 1], [2, 3], [3, 0], [3, 3]])
    expect(moves(out)).toEqual([[0, 0, 2], [2, 0, 3]])
  })

  it('with no room anywhere everything over capacity is dropped (C = 0 via floor)', () => {
    const out = run({ capacityFactor: 0.5, rounding: 'floor' }, routingFromRows(PILE, { topK: 1 }))
    expect(out.capacity).toBe(0)
    expect(kept(out.routing)).toEqual([])
    expect(out.dropped.length).toBe(4)
  })

  it('weights: moved pairs get model-native weights; kept renormalises', () => {
    const out = run({ capacityFactor: 1 }, routingFromRows(PILE, { topK: 1, normalizeTopK: true }))
    expect(out.rerouted?.find((m) => m.token === 0)?.weight).toBeCloseTo(0.3 / 0.5, 6)
    const k = run({ capacityFactor: 1, renormalize: 'kept' }, routingFromRows(ROWS, { topK: 2 }))
    const t0 = pairsOf(k.routing).filter((p) => p.token === 0)
    expect(t0.reduce((s, p) => s + p.weight, 0)).toBeCloseTo(1, 6)
    expect(t0.find((p) => p.expert === 1)?.weight).toBeCloseTo(0.3 / 0.4, 6)
  })

  it('per-source-device scope and decode skipping', () => {
    const r = routingFromRows(PILE, { topK: 1, sourceDevice: [0, 0, 1, 1] })
    // Each device: C = 1. dev 0: e0 keeps t1, t0 → e1. dev 1: e0 keeps t3, t2 → e1 (room on dev 1).
    const out = run({ capacityFactor: 1, scope: 'per-source-device' }, r)
    expect(kept(out.routing)).toEqual([[0, 1], [1, 0], [2, 1], [3, 0]])
    expect(run({}, routingFromRows(PILE, { topK: 1, decode: true })).skipped).toMatch(/decode/)
  })
})

describe('spare-capacity-reroute: errors and plugin shape', () => {
  const registry = new PluginRegistry().register(spareCapacityReroute)

  it('is exported as default and named', () => {
    expect(spareDefault).toBe(spareCapacityReroute)
    expect(spareCapacityReroute.meta).toMatchObject({ name: 'spare-capacity-reroute', package: '@moe-route/policy-capacity' })
    expect(spareCapacityReroute.meta.schema).toBe(schema)
    expect(spareCapacityReroute.meta.defaultOptions).toBe(defaultOptions)
  })

  it.each([
    [{ capacityFactor: -0.5 }, '/options/capacityFactor'],
    [{ maxRank: 0 }, '/options/maxRank'],
    [{ maxRank: 'all' }, '/options/maxRank'],
    [{ rounds: 2 }, '/options/rounds'],
  ])('rejects %j at %s', (options, path) => {
    try {
      registry.resolveOptions(spareCapacityReroute, options)
      expect.unreachable()
    } catch (e) {
      expect(isMoeError(e) && e.code).toBe(ErrorCodes.PLUGIN_OPTIONS_INVALID)
      expect(isMoeError(e) && e.details.issues?.map((i) => i.path)).toContain(path)
    }
  })

  it('k > E is a clear error naming the policy', () => {
    try {
      applySpareCapacityReroute({ ...routingFromRows(PILE, { topK: 1 }), topK: 6 }, defaultOptions)
      expect.unreachable()
    } catch (e) {
      expect(isMoeError(e) && e.code).toBe(ErrorCodes.TOPK_EXCEEDS_EXPERTS)
      expect(isMoeError(e) && e.details.plugin).toBe('spare-capacity-reroute')
    }
  })

  it('runs inside the engine', () => {
    const engine = createMoe({
      plugins: [spareCapacityReroute],
      config: { model: { experts: 4, topK: 1, hidden: 8, intermediate: 8 }, policies: [{ use: 'spare-capacity-reroute', options: { capacityFactor: 1 } }] },
    })
    const res = engine.route({ id: 0, tokens: 4, scores: new Float32Array(PILE.flat()) })
    expect(res.telemetry.loadAfter).toEqual([1, 1, 1, 1])
    expect(res.telemetry.policies[0]).toMatchObject({ rerouted: 3, dropped: 0, capacity: 1 })
  })
})
