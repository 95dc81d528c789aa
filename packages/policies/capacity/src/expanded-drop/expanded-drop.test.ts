import { contiguousPlacement, createMoe, ErrorCodes, isMoeError, pairsOf, PluginRegistry, type Routing } from '@moe-route/core'
import { policyContext, routingFromRows } from '@moe-route/core/testing'
import { PolicyErrorCodes } from '../shared/index.js'
import { describe, expect, it } from 'vitest'
import expandedDropDefault, { applyExpandedDrop, createExpandedDrop, defaultOptions, expandedDrop, schema, type ExpandedDropOptions } from './index.js'

const kept = (r: Routing) => pairsOf(r).map((p) => [p.token, p.expert]).sort((a, b) => a[0] - b[0] || a[1] - b[1])
const weightOf = (r: Routing, token: number, expert: number) => pairsOf(r).find((p) => p.token === token && p.expert === expert)?.weight
const pairsIn = (list: readonly { token: number; expert: number }[]) => list.map((p) => [p.token, p.expert])
const codeOf = (fn: () => unknown) => {
  try {
    fn()
  } catch (e) {
    return isMoeError(e) ? { code: e.code, plugin: e.details.plugin } : { code: 'not a MoeError', plugin: undefined }
  }
  return { code: 'no error', plugin: undefined }
}

// Local case: E = 4, k = 1, two devices (contiguous: dev 0 = e0, e1; dev 1 = e2, e3).
//   t0 (dev 0): [.6 .2 .1 .1] → e0     t1 (dev 0): [.5 .3 .1 .1] → e0
//   t2 (dev 1): [.7 .1 .15 .05] → e0   t3 (dev 1): [.1 .1 .2 .6] → e3
// Candidates: t0 {e0, e1}, t1 {e0, e1}, t2 {e0, e2, e3}, t3 {e3, e2} (e3 de-duplicated).
const LOCAL_ROWS = [
  [0.6, 0.2, 0.1, 0.1],
  [0.5, 0.3, 0.1, 0.1],
  [0.7, 0.1, 0.15, 0.05],
  [0.1, 0.1, 0.2, 0.6],
]
const local = () => routingFromRows(LOCAL_ROWS, { topK: 1, sourceDevice: [0, 0, 1, 1] })
const two = policyContext(4, 2)

// E = 4, k = 2, T = 4 (the capacity-drop example).
const ROWS = [
  [0.5, 0.3, 0.1, 0.1],
  [0.6, 0.1, 0.2, 0.1],
  [0.4, 0.35, 0.15, 0.1],
  [0.7, 0.05, 0.05, 0.2],
]
const topTwo = () => routingFromRows(ROWS, { topK: 2 })
const run = (o: Partial<ExpandedDropOptions>, r: Routing, ctx = two) => createExpandedDrop(o).apply(r, ctx)

describe('expanded-drop: hand-computed cases', () => {
  it('local candidates at γ = 1 (C = 1): local experts absorb what top-k overflow drops', () => {
    const out = run({ capacityFactor: 1 }, local())
    expect(out.capacity).toBe(1)
    // e0 {t0 .6, t1 .5, t2 .7} keeps t2; e1 {t0 .2, t1 .3} keeps t1; e2 {t2 .15, t3 .2} keeps t3; e3 {t2 .05, t3 .6} keeps t3.
    expect(kept(out.routing)).toEqual([[1, 1], [2, 0], [3, 2], [3, 3]])
    expect(pairsIn(out.dropped)).toEqual([[0, 0], [1, 0]])
    expect(out.dropped.every((d) => d.reason === 'capacity' && d.policy === 'expanded-drop')).toBe(true)
    expect(out.added).toEqual([
      { token: 1, expert: 1, weight: expect.closeTo(0.3, 6) },
      { token: 3, expert: 2, weight: expect.closeTo(0.2, 6) },
    ])
    // t0 lost its only candidate with room: it contributes nothing.
    expect(Array.from(out.routing.expertIds.slice(0, out.routing.slots)).every((e) => e === -1)).toBe(true)
    // Tokens may end with more than k experts: slots widen.
    expect(out.routing.slots).toBe(2)
  })

  it('local candidates at γ = 2 (C = 2)', () => {
    const out = run({ capacityFactor: 2 }, local())
    expect(kept(out.routing)).toEqual([[0, 0], [0, 1], [1, 1], [2, 0], [2, 2], [2, 3], [3, 2], [3, 3]])
    expect(pairsIn(out.dropped)).toEqual([[1, 0]])
    expect(pairsIn(out.added ?? [])).toEqual([[0, 1], [1, 1], [2, 2], [2, 3], [3, 2]])
    expect(out.routing.slots).toBe(3)
  })

  it('maxExpertsPerToken keeps each token\'s best kept candidates', () => {
    const out = run({ capacityFactor: 2, maxExpertsPerToken: 1 }, local())
    expect(kept(out.routing)).toEqual([[0, 0], [1, 1], [2, 0], [3, 3]])
    expect(pairsIn(out.dropped)).toEqual([[1, 0]])
    expect(pairsIn(out.added ?? [])).toEqual([[1, 1]])
  })

  it('per-source-device scope: each device keeps C_d = 1 of its own candidates', () => {
    const out = run({ capacityFactor: 1, scope: 'per-source-device' }, local())
    // dev 0: e0 {t0 .6, t1 .5} keeps t0, e1 {t0 .2, t1 .3} keeps t1. dev 1: e0 t2; e2 {t2 .15, t3 .2} t3; e3 t3.
    expect(kept(out.routing)).toEqual([[0, 0], [1, 1], [2, 0], [3, 2], [3, 3]])
    expect(pairsIn(out.dropped)).toEqual([[1, 0]])
  })

  it('candidates all (the official code on one GPU), with score ties broken by token index', () => {
    const out = run({ capacityFactor: 1, candidates: 'all' }, topTwo(), policyContext(4))
    // e0 keeps t3 .7, t1 .6; e1 keeps t2 .35, t0 .3; e2 keeps t1 .2, t2 .15; e3 keeps t3 .2, then t0 (tie .1 with t1, t2).
    expect(kept(out.routing)).toEqual([[0, 1], [0, 3], [1, 0], [1, 2], [2, 1], [2, 2], [3, 0], [3, 3]])
    expect(pairsIn(out.dropped)).toEqual([[0, 0], [2, 0]])
    expect(pairsIn(out.added ?? [])).toEqual([[0, 3], [2, 2]])
  })

  it('maxExpertsPerToken can drop input pairs (reason max-experts-per-token)', () => {
    const out = run({ capacityFactor: 1, candidates: 'all', maxExpertsPerToken: 1 }, topTwo(), policyContext(4))
    expect(kept(out.routing)).toEqual([[0, 1], [1, 0], [2, 1], [3, 0]])
    expect(out.dropped.map((d) => [d.token, d.expert, d.reason])).toEqual([
      [0, 0, 'capacity'],
      [1, 2, 'max-experts-per-token'],
      [2, 0, 'capacity'],
      [3, 3, 'max-experts-per-token'],
    ])
  })

  it('global-topM: M = ⌈k·1.5⌉ = 3 candidates per token', () => {
    // Top-3: t0 {e0 e1 e2}, t1 {e0 e2 e1}, t2 {e0 e1 e2}, t3 {e0 e3 e1} (ties → lower expert).
    const out = run({ capacityFactor: 1, candidates: 'global-topM', overselectionRatio: 1.5 }, topTwo(), policyContext(4))
    expect(kept(out.routing)).toEqual([[0, 1], [1, 0], [1, 2], [2, 1], [2, 2], [3, 0], [3, 3]])
    expect(pairsIn(out.dropped)).toEqual([[0, 0], [2, 0]])
    expect(pairsIn(out.added ?? [])).toEqual([[2, 2]])
    // overselectionRatio 1 means M = k: plain score token drop with raw-score weights.
    const plain = run({ capacityFactor: 1, candidates: 'global-topM', overselectionRatio: 1 }, topTwo(), policyContext(4))
    expect(pairsIn(plain.dropped)).toEqual([[0, 0], [2, 0]])
    expect(plain.added).toEqual([])
  })

  it('weights are raw softmax scores, also for a top-k-normalising model', () => {
    const r = routingFromRows(ROWS, { topK: 2, normalizeTopK: true })
    expect(weightOf(r, 1, 0)).toBeCloseTo(0.75, 6)
    const out = run({ capacityFactor: 1, candidates: 'all' }, r, policyContext(4))
    expect(weightOf(out.routing, 1, 0)).toBeCloseTo(0.6, 6)
    expect(weightOf(out.routing, 0, 3)).toBeCloseTo(0.1, 6)
  })

  it('localExperts: a flat list applies to every token, nested lists by source device', () => {
    const flat = run({ capacityFactor: 1, localExperts: [1] }, local(), policyContext(4))
    // Candidates: t0 {e0, e1}, t1 {e0, e1}, t2 {e0, e1}, t3 {e3, e1}. e1 {t0 .2, t1 .3, t2 .1, t3 .1} keeps t1.
    expect(kept(flat.routing)).toEqual([[1, 1], [2, 0], [3, 3]])
    const nested = run({ capacityFactor: 1, localExperts: [[0, 1], [2, 3]] }, local(), policyContext(4))
    expect(kept(nested.routing)).toEqual(kept(run({ capacityFactor: 1 }, local()).routing))
  })

  it('decode batches are skipped unless applyToDecode', () => {
    const r = routingFromRows(LOCAL_ROWS, { topK: 1, sourceDevice: [0, 0, 1, 1], decode: true })
    const out = run({ capacityFactor: 1 }, r)
    expect(out.routing).toBe(r)
    expect(out.skipped).toMatch(/decode/)
    expect(pairsIn(run({ capacityFactor: 1, applyToDecode: true }, r).dropped)).toEqual([[0, 0], [1, 0]])
  })
})

describe('expanded-drop: errors and plugin shape', () => {
  const registry = new PluginRegistry().register(expandedDrop)
  const model = { experts: 4, topK: 1, hidden: 8, intermediate: 8, normalizeTopK: false }

  it('is exported as default and named', () => {
    expect(expandedDropDefault).toBe(expandedDrop)
    expect(expandedDrop.meta).toMatchObject({ name: 'expanded-drop', package: '@moe-route/policy-capacity', core: '^0.1.0' })
    expect(expandedDrop.meta.schema).toBe(schema)
    expect(expandedDrop.meta.defaultOptions).toBe(defaultOptions)
  })

  it('local without a multi-device placement and without localExperts: MOE_ROUTE_ERR_POLICY_PLACEMENT_REQUIRED', () => {
    expect(codeOf(() => run({}, local(), policyContext(4, 1)))).toEqual({ code: PolicyErrorCodes.PLACEMENT_REQUIRED, plugin: 'expanded-drop' })
    expect(codeOf(() => registry.create('policy', 'expanded-drop', {}, { model, devices: 1, seed: 1, placement: contiguousPlacement(4, 1) }))).toEqual({
      code: PolicyErrorCodes.PLACEMENT_REQUIRED,
      plugin: 'expanded-drop',
    })
    expect(codeOf(() => registry.create('policy', 'expanded-drop', {}, { model, devices: 2, seed: 1, placement: contiguousPlacement(4, 2) }))).toEqual({
      code: 'no error',
      plugin: undefined,
    })
    expect(codeOf(() => registry.create('policy', 'expanded-drop', { candidates: 'all' }, { model, devices: 1, seed: 1 }))).toEqual({ code: 'no error', plugin: undefined })
  })

  it('bad localExperts: MOE_ROUTE_ERR_POLICY_LOCAL_EXPERTS_INVALID', () => {
    expect(codeOf(() => run({ localExperts: [9] }, local()))).toEqual({ code: PolicyErrorCodes.LOCAL_EXPERTS_INVALID, plugin: 'expanded-drop' })
    expect(codeOf(() => run({ localExperts: [[0, 1]] }, local()))).toEqual({ code: PolicyErrorCodes.LOCAL_EXPERTS_INVALID, plugin: 'expanded-drop' })
  })

  it.each([
    [{ capacityFactor: 0 }, '/options/capacityFactor'],
    [{ candidates: 'nearby' }, '/options/candidates'],
    [{ overselectionRatio: 0.5 }, '/options/overselectionRatio'],
    [{ maxExpertsPerToken: 0 }, '/options/maxExpertsPerToken'],
    [{ maxExpertsPerToken: 1.5 }, '/options/maxExpertsPerToken'],
    [{ localExperts: [[-1]] }, '/options/localExperts'],
    [{ localExperts: 'device' }, '/options/localExperts'],
    [{ rounds: 2 }, '/options/rounds'],
    [{ weights: 'normalized' }, '/options/weights'],
  ])('rejects %j at %s', (options, path) => {
    try {
      registry.resolveOptions(expandedDrop, options)
      expect.unreachable()
    } catch (e) {
      expect(isMoeError(e) && e.code).toBe(ErrorCodes.PLUGIN_OPTIONS_INVALID)
      expect(isMoeError(e) && e.details.issues?.map((i) => i.path)).toContain(path)
    }
  })

  it('k > E is a clear error naming the policy', () => {
    expect(codeOf(() => applyExpandedDrop({ ...topTwo(), topK: 5 }, { ...defaultOptions, candidates: 'all' }))).toEqual({
      code: ErrorCodes.TOPK_EXCEEDS_EXPERTS,
      plugin: 'expanded-drop',
    })
  })

  it('runs inside the engine over two devices; telemetry reports the added pairs', () => {
    const engine = createMoe({
      plugins: [expandedDrop],
      config: { model: { experts: 4, topK: 1, hidden: 8, intermediate: 8 }, devices: 2, policies: [{ use: 'expanded-drop', options: { capacityFactor: 1 } }] },
    })
    const res = engine.route({ id: 1, tokens: 4, scores: new Float32Array(LOCAL_ROWS.flat()), sourceDevice: Int32Array.from([0, 0, 1, 1]) })
    expect(res.telemetry.addedPairs).toBe(2)
    expect(res.telemetry.droppedPairs).toBe(2)
    expect(res.telemetry.tokensFullyDropped).toBe(1)
    expect(res.telemetry.policies[0]).toMatchObject({ policy: 'expanded-drop', dropped: 2, added: 2, capacity: 1 })
  })
})

describe('expanded-drop: weights option', () => {
  it('model-native divides by the original top-k score sum on a renormalising model, and is raw otherwise', () => {
    const r = routingFromRows(ROWS, { topK: 2, normalizeTopK: true })
    const out = createExpandedDrop({ capacityFactor: 1, candidates: 'all', weights: 'model-native' }).apply(r, policyContext(4))
    // t1 keeps e0 (.6) and e2 (.2): its original top-2 sum is .8.
    expect(pairsOf(out.routing).find((p) => p.token === 1 && p.expert === 0)?.weight).toBeCloseTo(0.75, 6)
    // t0 gains e3 (.1) over its original top-2 sum .8.
    expect(pairsOf(out.routing).find((p) => p.token === 0 && p.expert === 3)?.weight).toBeCloseTo(0.125, 6)
    const raw = createExpandedDrop({ capacityFactor: 1, candidates: 'all', weights: 'model-native' }).apply(topTwo(), policyContext(4))
    expect(pairsOf(raw.routing).find((p) => p.token === 0 && p.expert === 3)?.weight).toBeCloseTo(0.1, 6)
  })
})
