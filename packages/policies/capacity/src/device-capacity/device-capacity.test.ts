import { contiguousPlacement, createMoe, ErrorCodes, isMoeError, mulberry32, pairsOf, PluginRegistry, type PlacementMap, type Routing } from '@moe-route/core'
import { policyContext, routingFromRows } from '@moe-route/core/testing'
import { describe, expect, it } from 'vitest'
import deviceDefault, {
  applyDeviceCapacity,
  createDeviceCapacity,
  defaultOptions,
  deviceBudgets,
  deviceCapacity,
  deviceClasses,
  MAX_LOWERED_BUDGETS,
  primaryDevices,
  schema,
  type DeviceCapacityOptions,
} from './index.js'

const kept = (r: Routing) => pairsOf(r).map((p) => [p.token, p.expert]).sort((a, b) => a[0] - b[0] || a[1] - b[1])
const drops = (o: { dropped: readonly { token: number; expert: number; reason: string }[] }) => o.dropped.map((d) => [d.token, d.expert, d.reason])

// E = 4, k = 2, T = 4; two devices: dev 0 = {e0, e1}, dev 1 = {e2, e3}.
// Pairs on dev 0 by score: (3,0) .7, (1,0) .6, (0,0) .5, (2,0) .4, (2,1) .35, (0,1) .3 — 6 pairs; dev 1: 2 pairs.
const ROWS = [
  [0.5, 0.3, 0.1, 0.1],
  [0.6, 0.1, 0.2, 0.1],
  [0.4, 0.35, 0.15, 0.1],
  [0.7, 0.05, 0.05, 0.2],
]
const two = policyContext(4, 2)
const run = (o: Partial<DeviceCapacityOptions>, r: Routing = routingFromRows(ROWS, { topK: 2 }), ctx = two) => createDeviceCapacity(o).apply(r, ctx)

describe('device-capacity: hand-computed cases', () => {
  it('γ = 1: device budget n_d·γ·k·T/E = 4; dev 0 drops its two lowest-score pairs (both at e1)', () => {
    const out = run({ capacityFactor: 1 })
    expect(drops(out)).toEqual([[0, 1, 'device-capacity'], [2, 1, 'device-capacity']])
    expect(kept(out.routing)).toEqual([[0, 0], [1, 0], [1, 2], [2, 0], [3, 0], [3, 3]])
    // Per-expert load may exceed the per-expert share (e0 keeps 4 > 2): only the device sum is capped.
    expect(out.capacity).toBe(2)
    expect(out.dropped[0].policy).toBe('device-capacity')
  })

  it('γ = 1.25: budget ⌈5⌉ = 5 drops one pair; floor/round agree here, γ = 1.1 separates them', () => {
    expect(drops(run({ capacityFactor: 1.25 }))).toEqual([[0, 1, 'device-capacity']])
    // n_d·γ·k·T/E = 2·1.1·2 = 4.4 → ceil 5, floor 4, round 4.
    expect(deviceBudgets(Int32Array.from([0, 0, 1, 1]), 2, 1.1, 4, 2, 'ceil')).toEqual([5, 5])
    expect(deviceBudgets(Int32Array.from([0, 0, 1, 1]), 2, 1.1, 4, 2, 'floor')).toEqual([4, 4])
    expect(drops(run({ capacityFactor: 1.1, rounding: 'floor' }))).toEqual([[0, 1, 'device-capacity'], [2, 1, 'device-capacity']])
  })

  it('budgets follow the placement: 3 experts on dev 0, 1 on dev 1', () => {
    const placement: PlacementMap = { devices: 2, experts: 4, replicas: [[0], [0], [1], [0]], strategy: 'test' }
    expect(deviceBudgets(primaryDevices(placement, 4), 2, 1, 4, 2, 'ceil')).toEqual([6, 2])
    // dev 0 = {e0, e1, e3} holds 7 pairs (e0 4, e1 2, e3 1), budget 6 → drops its lowest-score pair, (3,3) .2.
    const out = run({ capacityFactor: 1 }, routingFromRows(ROWS, { topK: 2 }), { placement, batchId: 0, random: mulberry32(1) })
    expect(drops(out)).toEqual([[3, 3, 'device-capacity']])
  })

  it('one device: the budget is γ·k·T (a global cap keeping the best-scoring pairs)', () => {
    expect(run({ capacityFactor: 1 }, undefined, policyContext(4, 1)).dropped).toEqual([])
    const half = run({ capacityFactor: 0.5 }, undefined, policyContext(4, 1))
    expect(kept(half.routing)).toEqual([[0, 0], [1, 0], [2, 0], [3, 0]])
  })

  it('equal scores on one device: the lower expert index is kept', () => {
    // T = 1, k = 2: budget ⌈2·0.5·2·1/4⌉ = 1 on dev 0, which gets (0,0) and (0,1), both .4.
    const out = run({ capacityFactor: 0.5 }, routingFromRows([[0.4, 0.4, 0.1, 0.1]], { topK: 2 }))
    expect(kept(out.routing)).toEqual([[0, 0]])
  })

  it('renormalize kept, per-source-device scope and decode skipping', () => {
    const k = run({ capacityFactor: 1, renormalize: 'kept' })
    expect(pairsOf(k.routing).filter((p) => p.token === 0).map((p) => p.weight)).toEqual([1])
    // Per source device (t0, t1 on 0; t2, t3 on 1): T_d = 2, budgets 2 per device.
    // Source 0 sends dev 0: (1,0) .6, (0,0) .5, (0,1) .3 → drops (0,1). Source 1 sends dev 0: (3,0) .7, (2,0) .4, (2,1) .35 → drops (2,1).
    const per = run({ capacityFactor: 1, scope: 'per-source-device' }, routingFromRows(ROWS, { topK: 2, sourceDevice: [0, 0, 1, 1] }))
    expect(drops(per)).toEqual([[0, 1, 'device-capacity'], [2, 1, 'device-capacity']])
    const dec = run({ capacityFactor: 0.1 }, routingFromRows(ROWS, { topK: 2, decode: true }))
    expect(dec.skipped).toMatch(/decode/)
  })
})

describe('device-capacity: errors and plugin shape', () => {
  const registry = new PluginRegistry().register(deviceCapacity)

  it('is exported as default and named', () => {
    expect(deviceDefault).toBe(deviceCapacity)
    expect(deviceCapacity.meta).toMatchObject({ name: 'device-capacity', package: '@moe-route/policy-capacity' })
    expect(deviceCapacity.meta.schema).toBe(schema)
    expect(deviceCapacity.meta.defaultOptions).toBe(defaultOptions)
  })

  it.each([
    [{ capacityFactor: 0 }, '/options/capacityFactor'],
    [{ rounding: 'nearest' }, '/options/rounding'],
    [{ priority: 'score' }, '/options/priority'],
  ])('rejects %j at %s', (options, path) => {
    try {
      registry.resolveOptions(deviceCapacity, options)
      expect.unreachable()
    } catch (e) {
      expect(isMoeError(e) && e.code).toBe(ErrorCodes.PLUGIN_OPTIONS_INVALID)
      expect(isMoeError(e) && e.details.issues?.map((i) => i.path)).toContain(path)
    }
  })

  it('a placement for another expert count and k > E are clear errors naming the policy', () => {
    const r = routingFromRows(ROWS, { topK: 2 })
    for (const [fn, code] of [
      [() => applyDeviceCapacity(r, defaultOptions, contiguousPlacement(8, 2)), ErrorCodes.INPUT_INVALID],
      [() => applyDeviceCapacity({ ...r, topK: 5 }, defaultOptions, contiguousPlacement(4, 2)), ErrorCodes.TOPK_EXCEEDS_EXPERTS],
    ] as const) {
      try {
        fn()
        expect.unreachable()
      } catch (e) {
        expect(isMoeError(e) && e.code).toBe(code)
        expect(isMoeError(e) && e.details.plugin).toBe('device-capacity')
      }
    }
  })

  it('runs inside the engine; telemetry device loads respect the budgets', () => {
    const engine = createMoe({
      plugins: [deviceCapacity],
      config: { model: { experts: 4, topK: 2, hidden: 8, intermediate: 8 }, devices: 2, policies: [{ use: 'device-capacity', options: { capacityFactor: 1 } }] },
    })
    const res = engine.route({ id: 0, tokens: 4, scores: new Float32Array(ROWS.flat()) })
    expect(res.telemetry.deviceLoad).toEqual([4, 2])
    expect(res.telemetry.policies[0]).toMatchObject({ policy: 'device-capacity', dropped: 2 })
  })
})

describe('device-capacity: GPU lowering (stage shape; decisions are checked on a device by testkit)', () => {
  const model = { experts: 64, topK: 8, hidden: 8, intermediate: 8, normalizeTopK: true }
  const ctx = (placement: PlacementMap) => ({ model, devices: placement.devices, placement, slotsIn: 8, subgroups: false, subgroupSize: null, maxWorkgroupSize: 256 })
  const batch = { tokens: 512, batchId: 0, decode: false, sourceTokens: null, seed: 1 }

  it('declares a WGSL lowering and lowers the defaults: one budget per class of devices', () => {
    expect(deviceCapacity.meta.device).toEqual(['wgsl'])
    const stage = createDeviceCapacity().lower!(ctx(contiguousPlacement(64, 8)))
    expect(stage).toMatchObject({ kind: 'wgsl', key: 'device-capacity', dropReason: 'device-capacity' })
    if (stage?.kind !== 'wgsl') throw new Error('expected a WGSL stage')
    expect(Array.from(stage.table!)).toEqual(new Array(8).fill(0))
    // renormalize none, not skipped, one group, 1 class, capacity ⌈8·512/64⌉ = 64, budget 8·64
    expect(stage.params!(batch)).toEqual([0, 0, 0, 1, 64, 512])
    expect(stage.params!({ ...batch, decode: true })[1]).toBe(1)
  })

  it('per source device: budgets per (source device, class), none for a device without tokens', () => {
    const stage = createDeviceCapacity({ scope: 'per-source-device' }).lower!(ctx(contiguousPlacement(64, 8)))
    if (stage?.kind !== 'wgsl') throw new Error('expected a WGSL stage')
    const src = [64, 0, 64, 64, 64, 64, 64, 128]
    expect(stage.params!({ ...batch, sourceTokens: src })).toEqual([0, 0, 1, 1, 16, 64, 0xffffffff, 64, 64, 64, 64, 64, 128])
  })

  it('uneven placements: budgets follow n_d through the device classes', () => {
    const placement: PlacementMap = { devices: 3, experts: 64, replicas: Array.from({ length: 64 }, (_, e) => (e < 32 ? [0, 1] : e < 48 ? [1] : [2])), strategy: 'test' }
    expect(deviceClasses(primaryDevices(placement, 64), 3)).toEqual({ classOf: Uint32Array.from([1, 0, 0]), hosted: [16, 32] })
    const stage = createDeviceCapacity({ rounding: 'floor', capacityFactor: 0.9 }).lower!(ctx(placement))
    if (stage?.kind !== 'wgsl') throw new Error('expected a WGSL stage')
    // ⌊16·0.9·8·512/64⌋ = 921 and ⌊32·0.9·8·512/64⌋ = 1843, by class; per device as the host computes them
    const words = stage.params!(batch)
    expect(words.slice(5)).toEqual([921, 1843])
    expect([0, 1, 2].map((d) => words[5 + stage.table![d]])).toEqual(deviceBudgets(primaryDevices(placement, 64), 3, 0.9, 512, 8, 'floor'))
  })

  it('runs on the host where the budgets exceed the stage parameters', () => {
    const perSource = createDeviceCapacity({ scope: 'per-source-device' })
    expect(perSource.lower!(ctx(contiguousPlacement(64, 8)))).not.toBeNull() // 8 devices × 1 class
    expect(perSource.lower!(ctx(contiguousPlacement(64, 5)))).not.toBeNull() // 13 and 12 experts: 5 × 2 classes
    expect(perSource.lower!(ctx(contiguousPlacement(64, 6)))).toBeNull() // 11 and 10 experts: 6 × 2 classes
    expect(perSource.lower!(ctx(contiguousPlacement(64, 16)))).toBeNull() // 16 × 1 class
    expect(createDeviceCapacity().lower!(ctx(contiguousPlacement(64, 16)))).not.toBeNull() // global: 1 class
    expect(MAX_LOWERED_BUDGETS).toBe(11)
  })

  it('a placement for another number of experts fails when lowering, as apply would', () => {
    expect(() => createDeviceCapacity().lower!(ctx(contiguousPlacement(32, 4)))).toThrow(/placement covers 32 experts/)
  })
})
