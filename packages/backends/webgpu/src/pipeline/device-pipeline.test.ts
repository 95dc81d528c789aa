/**
 * The configured layer as one device pipeline (engine + webgpu backend) against the same
 * config on the CPU backend: same telemetry, same routing detail, output within the f32
 * tolerance; a host-only policy runs in a counted round trip; routing-only batches; small
 * batches grouped by the fused kernel give what the separate grouping kernels give; small
 * batches' telemetry in the fused kernel, large ones' in the three kernels.
 */
import { afterAll, describe, expect, it, vi } from 'vitest'
import { createMoe, definePolicy, mulberry32, routingFromPairs, pairsOf, softmaxRows, telemetryCounts, type LayerResult, type MoeConfig, type Plugin, type TelemetryCounts, type TokenBatch } from '@moe-route/core'
import { cpuBackend } from '@moe-route/backend-cpu'
import capacityDrop from '@moe-route/policy-capacity/capacity-drop'
import reroute from '@moe-route/policy-capacity/reroute'
import expertBuffer from '@moe-route/policy-expert-buffer'
import dynamicGating from '@moe-route/policy-dynamic-gating'
import { maxRelError } from '@moe-route/backend-cpu'
import { randomHidden } from '@moe-route/workloads'
import { webgpuBackend } from '../plugin.js'
import { Recorder } from '../gpu/context.js'
import { webgpuAdapterForTests } from '../testing/gpu-env.js'
import { createWebGpuPipeline, type WebGpuPipeline } from './device-pipeline.js'
import { GROUP_FUSED_DEFAULT_PAIRS, GROUP_FUSED_MAX_PAIRS } from './grouping.program.js'

vi.setConfig({ testTimeout: 180_000 })
const adapter = await webgpuAdapterForTests()

const model = { experts: 8, topK: 2, hidden: 32, intermediate: 48, normalizeTopK: true }
const config = (backend: string, extra: Partial<MoeConfig> = {}): MoeConfig => ({
  model,
  policies: [{ use: 'capacity-drop', options: { capacityFactor: 1.0 } }],
  backend: { use: backend, ...(backend === 'webgpu' ? { options: { weightsDtype: 'f32' } } : {}) },
  weights: { seed: 3, std: 0.05 },
  ...extra,
})

/** A third-party policy with no GPU lowering: drops every pair below a weight. */
const minWeight = definePolicy<{ minWeight: number }>({
  meta: { name: 'min-weight', package: 'moe-route-policy-min-weight', version: '1.0.0', core: '^0.1.0', schema: { type: 'object', properties: { minWeight: { type: 'number' } } }, defaultOptions: { minWeight: 0.45 } },
  create: ({ minWeight }) => ({
    name: 'min-weight',
    apply(routing) {
      const pairs = pairsOf(routing)
      const dropped = pairs.filter((p) => p.weight < minWeight).map((p) => ({ ...p, reason: 'min-weight', policy: 'min-weight' }))
      return { routing: routingFromPairs(routing, pairs.filter((p) => p.weight >= minWeight)), dropped }
    },
  }),
})

/** Records the names of the telemetry kernels the pipeline runs (`take()` returns and clears them). */
function telemetryKernels() {
  const spy = vi.spyOn(Recorder.prototype, 'run')
  return {
    take(): string[] {
      // the first pass that also sums the output norm shows as telemetry-partials+norm
      const names = spy.mock.calls
        .map(([program]) => (program.name === 'telemetry-partials' && program.cacheKey.includes('norm=1') ? 'telemetry-partials+norm' : program.name))
        .filter((n) => n.startsWith('telemetry'))
      spy.mockClear()
      return names
    },
    restore: () => spy.mockRestore(),
  }
}

const batches = (n: number, T: number): TokenBatch[] => Array.from({ length: n }, (_, i) => ({ id: i, tokens: T, hidden: randomHidden(T, model.hidden, 100 + i) }))

/** Gate probabilities skewed to three hot experts (a routing-only batch), with source devices on two devices when asked. */
const routed = (id: number, T: number, withSource: boolean): TokenBatch => {
  const random = mulberry32(500 + id)
  const logits = Float32Array.from({ length: T * model.experts }, (_, i) => 3 * random() + (i % model.experts < 3 ? 2 : 0))
  return { id, tokens: T, scores: softmaxRows(logits, T, model.experts), ...(withSource ? { sourceDevice: Int32Array.from({ length: T }, (_, t) => (t * 7) % 2) } : {}) }
}
/** Reroute then capacity-drop: added pairs, dropped pairs and whole tokens. */
const reroutePlugins = [capacityDrop, reroute, dynamicGating, webgpuBackend, cpuBackend]
const reroutePolicies = [
  { use: 'reroute', options: { capacityFactor: 1.0, rounds: 2 } },
  { use: 'capacity-drop', options: { capacityFactor: 0.8 } },
]

/** Same pairs; weights within 1e-5 (the GPU router's softmax is f32, the CPU's f64). */
function sameDecisions(g: LayerResult, c: LayerResult): void {
  const pairs = (r: LayerResult) => pairsOf(r.routing).sort((a, b) => a.token - b.token || a.expert - b.expert)
  const [pg, pc] = [pairs(g), pairs(c)]
  expect(pg.map((p) => `${p.token}:${p.expert}`)).toEqual(pc.map((p) => `${p.token}:${p.expert}`))
  pg.forEach((p, i) => expect(Math.abs(p.weight - pc[i].weight)).toBeLessThan(1e-5))
  expect(g.dropped.map((d) => `${d.token}:${d.expert}:${d.reason}:${d.policy}`)).toEqual(c.dropped.map((d) => `${d.token}:${d.expert}:${d.reason}:${d.policy}`))
  expect(Array.from(g.plan.counts)).toEqual(Array.from(c.plan.counts))
  expect(Array.from(g.plan.offsets)).toEqual(Array.from(c.plan.offsets))
  expect(Array.from(g.plan.rowToken)).toEqual(Array.from(c.plan.rowToken))
  const t = g.telemetry
  const u = c.telemetry
  expect([t.pairsBefore, t.pairsAfter, t.droppedPairs, t.addedPairs, t.tokensFullyDropped]).toEqual([u.pairsBefore, u.pairsAfter, u.droppedPairs, u.addedPairs, u.tokensFullyDropped])
  expect(t.loadBefore).toEqual(u.loadBefore)
  expect(t.loadAfter).toEqual(u.loadAfter)
  expect(t.gateMassKept).toBeCloseTo(u.gateMassKept, 5)
  expect(t.policies.map((p) => [p.policy, p.dropped, p.capacity])).toEqual(u.policies.map((p) => [p.policy, p.dropped, p.capacity]))
}

describe.skipIf(!adapter)(`device pipeline on ${adapter}`, () => {
  const engines: { dispose(): Promise<void> }[] = []
  afterAll(async () => {
    for (const e of engines) await e.dispose()
  })
  const make = (backend: string, extra: Partial<MoeConfig> = {}, plugins: readonly Plugin[] = [capacityDrop, webgpuBackend, cpuBackend, minWeight]) => {
    const e = createMoe({ config: config(backend, extra), plugins })
    engines.push(e)
    return e
  }

  it('runs every stage on the device and matches the CPU engine (T = 1, 5, 37)', async () => {
    const gpu = make('webgpu')
    const cpu = make('cpu')
    expect(await gpu.ready()).toEqual([
      { stage: 'router:softmax-top-k', where: 'device' },
      { stage: 'policy:capacity-drop', where: 'device' },
      { stage: 'dispatch:exact-size', where: 'device' },
      { stage: 'experts', where: 'device' },
    ])
    const kernels = telemetryKernels()
    for (const T of [1, 5, 37]) {
      for (const b of batches(2, T)) {
        const g = await gpu.forward(b)
        expect(kernels.take()).toEqual(['telemetry-fused'])
        const c = await cpu.forward(b)
        sameDecisions(g, c)
        expect(g.telemetry.hostRoundTrips).toBeUndefined()
        expect(maxRelError(g.output!, c.output!)).toBeLessThan(1e-4)
        expect(g.outputNorm!).toBeCloseTo(c.outputNorm!, 3)
      }
    }
    kernels.restore()
  })

  it('routes E 64, k 8 past 256 tokens (one subgroup per token where the device has subgroups, one invocation without): the CPU engine\'s decisions', async () => {
    const wide = { experts: 64, topK: 8, hidden: 32, intermediate: 16, normalizeTopK: false }
    const extra = (options: Record<string, unknown>): Partial<MoeConfig> => ({ model: wide, policies: [], backend: { use: 'webgpu', options: { weightsDtype: 'f32', ...options } } })
    const cpu = make('cpu', { model: wide, policies: [] })
    const runs: LayerResult[][] = []
    for (const options of [{}, { subgroups: false }]) {
      const gpu = make('webgpu', extra(options))
      const got: LayerResult[] = []
      for (const T of [300, 3]) {
        const b = { id: T, tokens: T, hidden: randomHidden(T, wide.hidden, 900 + T) }
        const g = await gpu.forward(b)
        sameDecisions(g, await cpu.forward(b))
        got.push(g)
      }
      runs.push(got)
    }
    // both router passes: the same picks; weights within f32 rounding (lavapipe compiles the two
    // passes' exp/scale differently: 1-ulp differences)
    runs[0].forEach((g, i) => {
      expect(Array.from(g.routing.expertIds)).toEqual(Array.from(runs[1][i].routing.expertIds))
      expect(maxRelError(g.routing.weights, runs[1][i].routing.weights)).toBeLessThan(1e-6)
    })
  })

  it('keeps each device stage\'s uniforms across batches, rewritten when a batch\'s words change (seeded random priority: batch ids 7, 8, 7 give the CPU engine\'s drops)', async () => {
    const extra: Partial<MoeConfig> = { policies: [{ use: 'capacity-drop', options: { capacityFactor: 0.5, priority: 'random' } }] }
    const gpu = make('webgpu', extra)
    const cpu = make('cpu', extra)
    const pipeline = (await gpu.pipeline()) as WebGpuPipeline
    const device = pipeline.layer.ctx.device
    const writes = vi.spyOn(device.queue, 'writeBuffer')
    const uniformWrites = () => writes.mock.calls.map(([b]) => b.label).filter((l) => / (dims|params)$/.test(l))
    const hidden = randomHidden(16, model.hidden, 77)
    const drops: string[][] = []
    for (const id of [7, 8, 7, 7]) {
      writes.mockClear()
      const b: TokenBatch = { id, tokens: 16, hidden }
      const g = await gpu.forward(b)
      sameDecisions(g, await cpu.forward(b))
      drops.push(g.dropped.map((d) => `${d.token}:${d.expert}`))
      // the first batch writes both stages' dims and params; a new id rewrites the dims (batch id
      // and seed words), the same id nothing
      expect(uniformWrites().length, `batch ${id}`).toBe(drops.length === 1 ? 4 : drops.length === 4 ? 0 : 2)
    }
    writes.mockRestore()
    // the seed decides which pairs go: batch 8 drops other pairs than batch 7 on the same hidden states
    expect(drops[0].length).toBeGreaterThan(0)
    expect(drops[1]).not.toEqual(drops[0])
    expect(drops[2]).toEqual(drops[0])
    expect(drops[3]).toEqual(drops[0])
  })

  it('returns only telemetry and the output norm when asked, the output left on the device when asked', async () => {
    const gpu = make('webgpu')
    const cpu = make('cpu')
    const [b] = batches(1, 16)
    const s = await gpu.forward(b, { detail: 'telemetry', output: 'norm' })
    const c = await cpu.forward(b)
    expect(s.output).toBeUndefined()
    expect('routing' in s).toBe(false)
    expect(s.outputNorm!).toBeCloseTo(c.outputNorm!, 3)
    expect(s.telemetry.droppedPairs).toBe(c.telemetry.droppedPairs)
    const d = await gpu.forward(b, { detail: 'telemetry', output: 'device' })
    expect(d.deviceOutput?.rows).toBe(16)
    expect(d.deviceOutput?.columns).toBe(model.hidden)
    d.deviceOutput!.release()
  })

  it('runs a policy without a lowering on the host in one counted round trip', async () => {
    const extra = { policies: [{ use: 'min-weight' }, { use: 'capacity-drop', options: { capacityFactor: 1.0 } }] }
    const gpu = make('webgpu', extra)
    const cpu = make('cpu', extra)
    expect((await gpu.ready()).map((s) => s.where)).toEqual(['device', 'host', 'device', 'device', 'device'])
    for (const b of batches(2, 24)) {
      const g = await gpu.forward(b)
      const c = await cpu.forward(b)
      sameDecisions(g, c)
      expect(g.telemetry.hostRoundTrips).toEqual({ 'min-weight': 1 })
      expect(maxRelError(g.output!, c.output!)).toBeLessThan(1e-4)
    }
  })

  it('reads the experts from an expert store\'s device slots (4 of 8): same output, misses uploaded from host memory', async () => {
    for (const eviction of ['lifo', 'lru']) {
      const extra = { store: { use: 'expert-buffer', options: { slots: 4, eviction } } }
      const plugins = [capacityDrop, webgpuBackend, cpuBackend, expertBuffer]
      const gpu = make('webgpu', extra, plugins)
      const cpu = make('cpu', extra, plugins)
      expect((await gpu.ready()).map((s) => s.stage)).toContain('store:expert-buffer')
      // decode-sized batches (≤ 4 active experts: served from the slots), then a batch with all 8 active (the load-compute sweep)
      for (const b of [...batches(6, 1), ...batches(1, 37)]) {
        const g = await gpu.forward(b)
        const c = await cpu.forward(b)
        sameDecisions(g, c)
        expect(maxRelError(g.output!, c.output!), `${eviction} batch ${b.id} T ${b.tokens}`).toBeLessThan(1e-4)
        const gs = g.telemetry.store!
        expect(gs.hits + gs.misses).toBeGreaterThan(0)
        if (b.tokens === 1) expect([gs.hits, gs.misses, gs.evictions]).toEqual([c.telemetry.store!.hits, c.telemetry.store!.misses, c.telemetry.store!.evictions])
        expect(gs.bytesUploaded).toBe(gs.misses * 3 * model.hidden * model.intermediate * 4)
      }
    }
  })

  it('counts the telemetry of large batches over many workgroups exactly (T = 700, 1500; two devices; 640 with hidden states)', async () => {
    // gate probabilities given (both sides rank the same f32 scores), skewed to three hot
    // experts: reroute moves pairs to cold experts (added), capacity-drop drops pairs and
    // whole tokens; two devices, with and without source devices, traffic counted once per
    // destination device (exact-size) and once per pair (dynamic-gating)
    const crossing: number[] = []
    for (const dispatcher of [undefined, { use: 'dynamic-gating', options: { mode: 'dynamic' } }]) {
      const extra: Partial<MoeConfig> = { policies: reroutePolicies, devices: 2, ...(dispatcher ? { dispatcher } : {}) }
      const gpu = make('webgpu', extra, reroutePlugins)
      const cpu = make('cpu', extra, reroutePlugins)
      const pipeline = (await gpu.pipeline())!
      expect(pipeline.stages.every((s) => s.where === 'device')).toBe(true)
      for (const b of [routed(1, 700, false), routed(2, 1500, true)]) {
        // routing-only batches run the pipeline directly (the engine routes them on the host)
        const kernels = telemetryKernels()
        const res = await pipeline.forward(b, { detail: 'full', output: 'norm' })
        expect(kernels.take()).toEqual(['telemetry-partials', 'telemetry'])
        kernels.restore()
        const d = res.detail!
        const c = await cpu.forward(b)
        const g = res.counts
        // the host's counts of the device's own routing and plan
        const h = telemetryCounts({ original: d.original, plan: d.plan, outcomes: [] })
        const ints = (x: TelemetryCounts) => [x.pairsBefore, x.pairsAfter, x.dropped, x.added, x.tokensFullyDropped, ...x.loadBefore, ...x.loadAfter]
        expect(ints(g)).toEqual(ints(h))
        expect(Math.abs(g.massBefore - h.massBefore)).toBeLessThan(1e-5 * h.massBefore)
        expect(Math.abs(g.massKept - h.massKept)).toBeLessThan(1e-5 * h.massKept)
        // and the CPU engine's decisions and telemetry
        const u = c.telemetry
        expect(d.dropped.map((x) => `${x.token}:${x.expert}:${x.reason}:${x.policy}`)).toEqual(c.dropped.map((x) => `${x.token}:${x.expert}:${x.reason}:${x.policy}`))
        expect([g.pairsBefore, g.pairsAfter, g.dropped, g.added, g.tokensFullyDropped]).toEqual([u.pairsBefore, u.pairsAfter, u.droppedPairs, u.addedPairs, u.tokensFullyDropped])
        expect(g.loadBefore).toEqual(u.loadBefore)
        expect(g.loadAfter).toEqual(u.loadAfter)
        expect(g.massKept / g.massBefore).toBeCloseTo(u.gateMassKept, 5)
        expect(g.dispatch.bytesCrossDevice).toBe(u.dispatch.bytesCrossDevice)
        expect(g.dispatch.slotsComputed).toBe(u.dispatch.slotsComputed)
        expect(Math.min(g.dropped, g.added, g.tokensFullyDropped, g.dispatch.bytesCrossDevice)).toBeGreaterThan(0)
        crossing.push(g.dispatch.bytesCrossDevice)
      }
    }
    // per pair counts more crossings than per destination device
    expect(crossing[2]).toBeGreaterThan(crossing[0])
    // hidden states through the engine: experts, output norm over several norm partials
    const gpu = make('webgpu')
    const cpu = make('cpu')
    const [b] = batches(1, 640)
    const kernels = telemetryKernels()
    const g = await gpu.forward(b)
    expect(kernels.take()).toEqual(['telemetry-partials+norm', 'telemetry'])
    kernels.restore()
    const c = await cpu.forward(b)
    sameDecisions(g, c)
    expect(g.telemetry.droppedPairs).toBeGreaterThan(0)
    expect(g.outputNorm!).toBeCloseTo(c.outputNorm!, 3)
  })
  it('groups small batches with the fused kernel: the same routing, plan, telemetry and output bits as the separate kernels (exact and padded, token and choice order, T = 0 to past the bound)', async () => {
    const plugins = [capacityDrop, dynamicGating, webgpuBackend, cpuBackend]
    const stat = (priority: string) => ({ use: 'dynamic-gating', options: { mode: 'static', capacityRule: 'expert-share', capacityFactor: 1.0, priority } })
    const setups: [string, Partial<MoeConfig>][] = [
      ['exact-size after capacity-drop', {}],
      ['static gating, 2 source devices, token order', { devices: 2, policies: [], dispatcher: stat('token') }],
      ['static gating, 2 source devices, choice order', { devices: 2, policies: [], dispatcher: stat('choice') }],
    ]
    const ran: string[] = []
    const realRun = Recorder.prototype.run
    const runSpy = vi.spyOn(Recorder.prototype, 'run').mockImplementation(function (this: Recorder, ...args: Parameters<Recorder['run']>) {
      ran.push(args[0].name)
      return realRun.apply(this, args)
    })
    try {
      for (const [name, extra] of setups) {
        const engine = make('webgpu', extra, plugins)
        const fused = (await engine.pipeline()) as WebGpuPipeline
        // the same layer, weights and plugin instances, grouped by the separate kernels at every size
        const separate = await createWebGpuPipeline(fused.layer, fused.weights, fused.spec, { ...fused.options, ownsWeights: false, groupFusedMaxPairs: 0 })
        for (const bad of [-1, 1.5, GROUP_FUSED_MAX_PAIRS + 1, Number.NaN]) {
          await expect(createWebGpuPipeline(fused.layer, fused.weights, fused.spec, { groupFusedMaxPairs: bad })).rejects.toMatchObject({ code: 'MOE_ROUTE_ERR_INPUT_INVALID', message: expect.stringContaining('groupFusedMaxPairs') })
        }
        const Tmax = GROUP_FUSED_DEFAULT_PAIRS / model.topK
        for (const T of [0, 1, 5, 37, Tmax, Tmax + 1]) {
          const b: TokenBatch = { id: T, tokens: T, hidden: randomHidden(T, model.hidden, 700 + T), ...(extra.devices ? { sourceDevice: Int32Array.from({ length: T }, (_, t) => (t * 5) % 3 === 0 ? 1 : 0) } : {}) }
          ran.length = 0
          const a = await separate.forward(b, { detail: 'full' })
          expect(ran).not.toContain('group-fused')
          ran.length = 0
          const f = await fused.forward(b, { detail: 'full' })
          expect(ran.includes('group-fused'), `${name} T ${T}`).toBe(T >= 1 && T <= Tmax)
          if (T >= 1 && T <= Tmax) expect(ran.filter((n) => /^group-|^dispatch-offsets$/.test(n))).toEqual(['group-fused'])
          // everything but timings, outputs compared as bits
          const strip = (r: typeof a) => ({ ...r, stages: [], kernels: undefined, output: r.output && new Uint32Array(r.output.buffer, r.output.byteOffset, r.output.length) })
          expect(strip(f), `${name} T ${T}`).toEqual(strip(a))
          if (T === 37 && extra.devices) expect(f.counts.dispatch.droppedPairs, `${name}: the cap drops pairs`).toBeGreaterThan(0)
          if (T > 0) expect(f.detail!.plan.rowToken.length).toBeGreaterThan(0)
        }
        await separate.dispose()
      }
    } finally {
      runSpy.mockRestore()
    }
  })

  it('counts small batches\' telemetry in the fused kernel exactly (T = 1, 24, 128; two devices, per destination device and per pair)', async () => {
    for (const dispatcher of [undefined, { use: 'dynamic-gating', options: { mode: 'dynamic' } }]) {
      const extra: Partial<MoeConfig> = { policies: reroutePolicies, devices: 2, ...(dispatcher ? { dispatcher } : {}) }
      const pipeline = (await make('webgpu', extra, reroutePlugins).pipeline())!
      const cpu = make('cpu', extra, reroutePlugins)
      const kernels = telemetryKernels()
      for (const b of [routed(11, 1, true), routed(12, 24, false), routed(13, 128, true)]) {
        const res = await pipeline.forward(b, { detail: 'full', output: 'norm' })
        expect(kernels.take()).toEqual(['telemetry-fused'])
        const d = res.detail!
        const g = res.counts
        const h = telemetryCounts({ original: d.original, plan: d.plan, outcomes: [] })
        expect([g.pairsBefore, g.pairsAfter, g.dropped, g.added, g.tokensFullyDropped, ...g.loadBefore, ...g.loadAfter]).toEqual([h.pairsBefore, h.pairsAfter, h.dropped, h.added, h.tokensFullyDropped, ...h.loadBefore, ...h.loadAfter])
        expect(Math.abs(g.massBefore - h.massBefore)).toBeLessThanOrEqual(1e-5 * h.massBefore)
        expect(Math.abs(g.massKept - h.massKept)).toBeLessThanOrEqual(1e-5 * h.massKept)
        const u = (await cpu.forward(b)).telemetry
        expect([g.pairsBefore, g.pairsAfter, g.dropped, g.added, g.tokensFullyDropped]).toEqual([u.pairsBefore, u.pairsAfter, u.droppedPairs, u.addedPairs, u.tokensFullyDropped])
        expect(g.dispatch.bytesCrossDevice).toBe(u.dispatch.bytesCrossDevice)
        expect(g.dispatch.slotsComputed).toBe(u.dispatch.slotsComputed)
        if (b.tokens === 128) expect(Math.min(g.dropped, g.added, g.tokensFullyDropped, g.dispatch.bytesCrossDevice)).toBeGreaterThan(0)
      }
      kernels.restore()
    }
  })
})
