import { createMoe, ErrorCodes, isMoeError, pairsOf, PluginRegistry, type Routing } from '@moe-route/core'
import { policyContext, routingFromRows } from '@moe-route/core/testing'
import { describe, expect, it } from 'vitest'
import rerouteDefault, { applyReroute, createReroute, defaultOptions, reroute, schema, type RerouteOptions } from './index.js'

const kept = (r: Routing) => pairsOf(r).map((p) => [p.token, p.expert]).sort((a, b) => a[0] - b[0] || a[1] - b[1])
const moves = (o: { rerouted?: readonly { token: number; from: number; to: number }[] }) => (o.rerouted ?? []).map((m) => [m.token, m.from, m.to])
const drops = (o: { dropped: readonly { token: number; expert: number; reason: string }[] }) => o.dropped.map((d) => [d.token, d.expert, d.reason])

// E = 4, k = 1, every token's top-1 is e0. N̄ = 1; γ = 1 → C = 1.
//   t0 [.5 .3 .1 .1]   t1 [.6 .1 .25 .05]   t2 [.4 .35 .15 .1]   t3 [.7 .05 .05 .2]
const PILE = [
  [0.5, 0.3, 0.1, 0.1],
  [0.6, 0.1, 0.25, 0.05],
  [0.4, 0.35, 0.15, 0.1],
  [0.7, 0.05, 0.05, 0.2],
]
const ctx = policyContext(4)
const run = (o: Partial<RerouteOptions>, r: Routing) => createReroute(o).apply(r, ctx)

describe('reroute: hand-computed cases', () => {
  it('rounds = 1 is plain score token drop (everything lost is reroute-exhausted)', () => {
    const out = run({ capacityFactor: 1, rounds: 1 }, routingFromRows(PILE, { topK: 1 }))
    expect(kept(out.routing)).toEqual([[3, 0]])
    expect(drops(out)).toEqual([[0, 0, 'reroute-exhausted'], [1, 0, 'reroute-exhausted'], [2, 0, 'reroute-exhausted']])
    expect(out.rerouted).toEqual([])
    expect(out.capacity).toBe(1)
  })

  it('rounds = 2: losers pick their next-best expert, capacity is enforced again', () => {
    // Pass 1: e0 keeps t3. Pass 2: t0 → e1 (.3), t1 → e2 (.25), t2 → e1 (.35); e1 keeps t2, drops t0.
    const out = run({ capacityFactor: 1, rounds: 2 }, routingFromRows(PILE, { topK: 1 }))
    expect(kept(out.routing)).toEqual([[1, 2], [2, 1], [3, 0]])
    expect(moves(out)).toEqual([[1, 0, 2], [2, 0, 1]])
    expect(drops(out)).toEqual([[0, 0, 'reroute-exhausted']])
    expect(out.dropped[0].policy).toBe('reroute')
  })

  it('rounds = 3 and 4: a banned expert is never re-picked; t0 walks e1 → e2 (tie with e3, lower id) → e3', () => {
    const r = routingFromRows(PILE, { topK: 1 })
    const three = run({ capacityFactor: 1, rounds: 3 }, r)
    expect(kept(three.routing)).toEqual([[1, 2], [2, 1], [3, 0]])
    const four = run({ capacityFactor: 1, rounds: 4 }, r)
    expect(kept(four.routing)).toEqual([[0, 3], [1, 2], [2, 1], [3, 0]])
    expect(moves(four)).toEqual([[0, 0, 3], [1, 0, 2], [2, 0, 1]])
    expect(four.dropped).toEqual([])
  })

  it('a rerouted token displaces an earlier-kept token with a lower score (SPEC A.4)', () => {
    // E = 3, k = 1, C = 1.  t0 [.33 .34 .33] → e1;  t1 [.6 .35 .05] → e0;  t2 [.7 .2 .1] → e0.
    const r = routingFromRows([[0.33, 0.34, 0.33], [0.6, 0.35, 0.05], [0.7, 0.2, 0.1]], { topK: 1 })
    const two = createReroute({ capacityFactor: 1, rounds: 2 }).apply(r, policyContext(3))
    // Pass 2: t1 → e1 (.35) beats t0 (.34) there, so t0 loses a pair it had kept in pass 1.
    expect(kept(two.routing)).toEqual([[1, 1], [2, 0]])
    expect(moves(two)).toEqual([[1, 0, 1]])
    expect(drops(two)).toEqual([[0, 1, 'reroute-exhausted']])
    const four = createReroute({ capacityFactor: 1, rounds: 4 }).apply(r, policyContext(3))
    // Pass 3: t0 → e0 (tie .33 with e2, lower id), e0 keeps t2. Pass 4: t0 → e2.
    expect(kept(four.routing)).toEqual([[0, 2], [1, 1], [2, 0]])
    expect(moves(four)).toEqual([[0, 1, 2], [1, 0, 1]])
  })

  it('k = 2: only the lost slot is re-selected; the token keeps its other expert', () => {
    // E = 3, T = 2, k = 2: N̄ = 4/3, γ = 0.75 → C = ceil(1) = 1.
    // t0 [.5 .3 .2] → e0, e1;  t1 [.6 .35 .05] → e0, e1.  Pass 1: e0 keeps t1, e1 keeps t1.
    // Pass 2: t0 needs two experts and has none: picks e2 (.2) only (e0, e1 banned).
    const r = routingFromRows([[0.5, 0.3, 0.2], [0.6, 0.35, 0.05]], { topK: 2 })
    const out = createReroute({ capacityFactor: 0.75, rounds: 2 }).apply(r, policyContext(3))
    expect(kept(out.routing)).toEqual([[0, 2], [1, 0], [1, 1]])
    // The better lost expert (e0 .5) is matched with the new one; e1 is dropped.
    expect(moves(out)).toEqual([[0, 0, 2]])
    expect(drops(out)).toEqual([[0, 1, 'reroute-exhausted']])
  })

  it('weights: a rerouted pair gets its model-native weight; renormalize kept rescales to 1', () => {
    const raw = run({ capacityFactor: 1, rounds: 2 }, routingFromRows(PILE, { topK: 1 }))
    expect(raw.rerouted?.find((m) => m.token === 1)?.weight).toBeCloseTo(0.25, 6)
    const norm = run({ capacityFactor: 1, rounds: 2 }, routingFromRows(PILE, { topK: 1, normalizeTopK: true }))
    // Native weight with top-k renormalisation: .25 over the original top-1 score .6.
    expect(norm.rerouted?.find((m) => m.token === 1)?.weight).toBeCloseTo(0.25 / 0.6, 6)
    const k = run({ capacityFactor: 1, rounds: 2, renormalize: 'kept' }, routingFromRows(PILE, { topK: 1 }))
    expect(pairsOf(k.routing).every((p) => Math.abs(p.weight - 1) < 1e-6)).toBe(true)
    expect(k.rerouted?.every((m) => Math.abs(m.weight - 1) < 1e-6)).toBe(true)
  })

  it('per-source-device scope and decode skipping', () => {
    const r = routingFromRows(PILE, { topK: 1, sourceDevice: [0, 0, 1, 1] })
    // Per device T = 2 → C = ceil(1·1·2/4) = 1 per device and expert: e0 keeps t1 (dev 0) and t3 (dev 1).
    const out = run({ capacityFactor: 1, rounds: 2, scope: 'per-source-device' }, r)
    // Pass 2: t0 → e1 (dev 0), t2 → e1 (dev 1): different devices, both fit.
    expect(kept(out.routing)).toEqual([[0, 1], [1, 0], [2, 1], [3, 0]])
    const dec = routingFromRows(PILE, { topK: 1, decode: true })
    expect(run({ capacityFactor: 1 }, dec).skipped).toMatch(/decode/)
    expect(kept(run({ capacityFactor: 1, rounds: 1, applyToDecode: true }, dec).routing)).toEqual([[3, 0]])
  })
})

describe('reroute: errors and plugin shape', () => {
  const registry = new PluginRegistry().register(reroute)

  it('is exported as default and named', () => {
    expect(rerouteDefault).toBe(reroute)
    expect(reroute.meta).toMatchObject({ name: 'reroute', package: '@moe-route/policy-capacity', core: '^0.1.0' })
    expect(reroute.meta.schema).toBe(schema)
    expect(reroute.meta.defaultOptions).toBe(defaultOptions)
  })

  it.each([
    [{ capacityFactor: 0 }, '/options/capacityFactor'],
    [{ rounds: 0 }, '/options/rounds'],
    [{ rounds: 1.5 }, '/options/rounds'],
    [{ renormalize: 'softmax' }, '/options/renormalize'],
    [{ priority: 'score' }, '/options/priority'],
  ])('rejects %j at %s', (options, path) => {
    try {
      registry.resolveOptions(reroute, options)
      expect.unreachable()
    } catch (e) {
      expect(isMoeError(e) && e.code).toBe(ErrorCodes.PLUGIN_OPTIONS_INVALID)
      expect(isMoeError(e) && e.details.issues?.map((i) => i.path)).toContain(path)
    }
  })

  it('k > E is a clear error naming the policy', () => {
    const r = routingFromRows(PILE, { topK: 1 })
    try {
      applyReroute({ ...r, topK: 9 }, defaultOptions)
      expect.unreachable()
    } catch (e) {
      expect(isMoeError(e) && e.code).toBe(ErrorCodes.TOPK_EXCEEDS_EXPERTS)
      expect(isMoeError(e) && e.details.plugin).toBe('reroute')
    }
  })

  it('runs inside the engine', () => {
    const engine = createMoe({
      plugins: [reroute],
      config: { model: { experts: 4, topK: 1, hidden: 8, intermediate: 8 }, policies: [{ use: 'reroute', options: { capacityFactor: 1, rounds: 2 } }] },
    })
    const res = engine.route({ id: 3, tokens: 4, scores: new Float32Array(PILE.flat()) })
    expect(res.rerouted.map((m) => [m.token, m.from, m.to])).toEqual([[1, 0, 2], [2, 0, 1]])
    expect(res.telemetry.policies[0]).toMatchObject({ policy: 'reroute', dropped: 1, rerouted: 2, capacity: 1 })
    expect(res.telemetry.loadAfter).toEqual([1, 1, 1, 0])
  })
})
