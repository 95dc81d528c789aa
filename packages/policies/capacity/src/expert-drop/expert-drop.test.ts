import { contiguousPlacement, createMoe, ErrorCodes, isMoeError, pairsOf, PluginRegistry, type Routing } from '@moe-route/core'
import { policyContext, routingFromRows } from '@moe-route/core/testing'
import { describe, expect, it } from 'vitest'
import expertDropDefault, {
  applyExpertDrop,
  createExpertDrop,
  defaultOptions,
  EXACT_MASS_LIMBS,
  expertDrop,
  expertsToDrop,
  lowestLoadExperts,
  schema,
  type ExpertDropOptions,
} from './index.js'

const kept = (r: Routing) => pairsOf(r).map((p) => [p.token, p.expert]).sort((a, b) => a[0] - b[0] || a[1] - b[1])
const drops = (o: { dropped: readonly { token: number; expert: number; reason: string }[] }) => o.dropped.map((d) => [d.token, d.expert, d.reason])

// E = 4, k = 2, T = 4. Loads: e0 4, e1 2 (t0 .3, t2 .35), e2 1 (t1 .2), e3 1 (t3 .2).
const ROWS = [
  [0.5, 0.3, 0.1, 0.1],
  [0.6, 0.1, 0.2, 0.1],
  [0.4, 0.35, 0.15, 0.1],
  [0.7, 0.05, 0.05, 0.2],
]
const run = (o: Partial<ExpertDropOptions>, r: Routing = routingFromRows(ROWS, { topK: 2 })) => createExpertDrop(o).apply(r, policyContext(4))

describe('expert-drop: hand-computed cases', () => {
  it('drop: 1 skips the lowest-load expert (e2 and e3 tie on load 1 and mass .2 → lower index e2)', () => {
    const out = run({ drop: 1 })
    expect(drops(out)).toEqual([[1, 2, 'expert-drop']])
    expect(kept(out.routing)).toEqual([[0, 0], [0, 1], [1, 0], [2, 0], [2, 1], [3, 0], [3, 3]])
    expect(out.capacity).toBeNull()
    expect(out.dropped[0].policy).toBe('expert-drop')
  })

  it('drop: 2 skips e2 and e3; drop: 3 adds e1 (load 2)', () => {
    expect(drops(run({ drop: 2 }))).toEqual([[1, 2, 'expert-drop'], [3, 3, 'expert-drop']])
    expect(drops(run({ drop: 3 })).map((d) => d[1])).toEqual([1, 2, 1, 3])
  })

  it('load ties break by lower routed gate mass', () => {
    // e2 gets t1 at .25, e3 gets t3 at .2: equal loads, e3 has less mass → e3 is skipped.
    const rows = ROWS.map((r) => r.slice())
    rows[1] = [0.6, 0.05, 0.25, 0.1]
    expect(lowestLoadExperts(routingFromRows(rows, { topK: 2 }), 1)).toEqual([3])
  })

  it('fractions of E: ⌊drop·E⌋ experts; 0.1 of 4 is none, 0.5 of 4 is two', () => {
    expect(expertsToDrop(0.1, 4)).toBe(0)
    expect(expertsToDrop(0.5, 4)).toBe(2)
    expect(expertsToDrop(0.2, 64)).toBe(12) // int(0.1·64·2) at γ = 2 (SPEC A.5)
    expect(expertsToDrop(9, 8)).toBe(8)
    expect(run({ drop: 0.1 }).dropped).toEqual([])
    expect(drops(run({ drop: 0.5 })).map((d) => d[1])).toEqual([2, 3])
  })

  it('idle experts count among the lowest-load ones', () => {
    // Only e0, e1 are used; with drop 2 the idle e2 and e3 are "skipped" and nothing changes.
    const r = routingFromRows([[0.6, 0.3, 0.05, 0.05], [0.5, 0.4, 0.05, 0.05]], { topK: 2 })
    expect(run({ drop: 2 }, r).dropped).toEqual([])
    expect(lowestLoadExperts(r, 2)).toEqual([2, 3])
  })

  it('renormalize kept and decode skipping', () => {
    const k = run({ drop: 1, renormalize: 'kept' })
    expect(pairsOf(k.routing).filter((p) => p.token === 1).map((p) => p.weight)).toEqual([1])
    const dec = routingFromRows(ROWS, { topK: 2, decode: true })
    expect(run({ drop: 1 }, dec).skipped).toMatch(/decode/)
    expect(drops(run({ drop: 1, applyToDecode: true }, dec))).toEqual([[1, 2, 'expert-drop']])
  })
})

describe('expert-drop: errors and plugin shape', () => {
  const registry = new PluginRegistry().register(expertDrop)

  it('is exported as default and named', () => {
    expect(expertDropDefault).toBe(expertDrop)
    expect(expertDrop.meta).toMatchObject({ name: 'expert-drop', package: '@moe-route/policy-capacity' })
    expect(expertDrop.meta.schema).toBe(schema)
    expect(expertDrop.meta.defaultOptions).toBe(defaultOptions)
  })

  it.each([[{ drop: 0 }], [{ drop: -1 }], [{ drop: 1.5 }], [{ drop: 'one' }], [{ fraction: 0.1 }]])('rejects %j', (options) => {
    try {
      registry.resolveOptions(expertDrop, options)
      expect.unreachable()
    } catch (e) {
      expect(isMoeError(e) && e.code).toBe(ErrorCodes.PLUGIN_OPTIONS_INVALID)
      expect(isMoeError(e) && e.details.plugin).toBe('expert-drop')
    }
  })

  it('accepts counts and fractions', () => {
    expect(registry.resolveOptions(expertDrop, { drop: 1 })).toMatchObject({ drop: 1 })
    expect(registry.resolveOptions(expertDrop, { drop: 0.25 })).toMatchObject({ drop: 0.25 })
  })

  it('k > E is a clear error naming the policy', () => {
    try {
      applyExpertDrop({ ...routingFromRows(ROWS, { topK: 2 }), topK: 7 }, defaultOptions)
      expect.unreachable()
    } catch (e) {
      expect(isMoeError(e) && e.code).toBe(ErrorCodes.TOPK_EXCEEDS_EXPERTS)
      expect(isMoeError(e) && e.details.plugin).toBe('expert-drop')
    }
  })

  it('runs inside the engine', () => {
    const engine = createMoe({
      plugins: [expertDrop],
      config: { model: { experts: 4, topK: 2, hidden: 8, intermediate: 8 }, policies: [{ use: 'expert-drop', options: { drop: 1 } }] },
    })
    const res = engine.route({ id: 0, tokens: 4, scores: new Float32Array(ROWS.flat()) })
    expect(res.telemetry.loadAfter).toEqual([4, 2, 0, 1])
  })
})

describe('expert-drop: GPU lowering (stage shape; decisions are checked on a device by testkit)', () => {
  const model = { experts: 64, topK: 8, hidden: 8, intermediate: 8, normalizeTopK: true }
  const ctx = { model, devices: 1, placement: contiguousPlacement(64, 1), slotsIn: 8, subgroups: false, subgroupSize: null, maxWorkgroupSize: 256 }
  const batch = { tokens: 32, batchId: 0, decode: false, sourceTokens: null, seed: 1 }

  it('declares a WGSL lowering; every option combination lowers', () => {
    expect(expertDrop.meta.device).toEqual(['wgsl'])
    for (const drop of [0.01, 0.1, 0.2, 1, 3, 100]) {
      for (const renormalize of ['none', 'model-native', 'kept'] as const) {
        for (const applyToDecode of [false, true]) {
          const stage = createExpertDrop({ drop, renormalize, applyToDecode }).lower!(ctx)
          if (stage?.kind !== 'wgsl') throw new Error('expected a WGSL stage')
          // renormalisation code, decode skip, experts skipped per batch (as the host counts them)
          expect(stage.params!({ ...batch, decode: true })).toEqual([['none', 'model-native', 'kept'].indexOf(renormalize), applyToDecode ? 0 : 1, expertsToDrop(drop, 64)])
          expect(stage.params!(batch)[1]).toBe(0)
          expect(stage.dropReason).toBe('expert-drop')
        }
      }
    }
  })

  it('counters hold each expert load and two exact mass accumulators', () => {
    const stage = createExpertDrop().lower!(ctx)
    if (stage?.kind !== 'wgsl') throw new Error('expected a WGSL stage')
    expect(stage.counterWords!(batch)).toBe(64 * (1 + 2 * EXACT_MASS_LIMBS))
    expect(stage.passes.map((p) => [p.entryPoint, p.workgroups(batch)])).toEqual([['accumulate', 1], ['rank', 1], ['emit', 1]])
    expect(stage.passes[0].workgroups({ ...batch, tokens: 512 })).toBe(16)
  })
})
