/**
 * The two telemetry kernels on their own against core's host counts of the same routings and
 * plan: a batch with more pairs than the first pass has workgroups (its grid-stride loop),
 * with policy drops, added and repeated pairs, dispatcher overflow and padding, two devices with a
 * replicated expert and source devices (traffic per destination device and per pair); and
 * more than 256 experts (loads past the workgroup counters); an output whose norm takes many
 * workgroups of the first pass. The fused one-workgroup kernel against the two passes
 * (telemetry-partials with the output norm's partials, telemetry) on the same inputs: the same
 * telemetry block, bit for bit, over random routings and outputs.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { mulberry32, softmaxTopK, telemetryCounts, tokenTraffic, type DispatchPlan, type PlacementMap, type Routing } from '@moe-route/core'
import { staticDispatch } from '@moe-route/policy-dynamic-gating'
import { acquireDevice } from '../gpu/device.js'
import { GpuContext } from '../gpu/context.js'
import { webgpuAdapterForTests } from '../testing/gpu-env.js'
import { planTokenRows } from './device-pipeline.js'
import { fusedTelemetry, normGroups, placementWords, TELE_FUSED_MAX_EXPERTS, TELE_FUSED_MAX_NORM_GROUPS, TELE_FUSED_NORM_STORAGE_BUFFERS, telemetryFusedProgram, telemetryGroups, telemetryPartialsProgram, telemetryPartWords, telemetryProgram, type TelemetryParams } from './grouping.program.js'
import { TELE_MAX_GROUPS, teleWords } from './grouping.wgsl.js'

vi.setConfig({ testTimeout: 180_000 })
const adapter = await webgpuAdapterForTests()

/** Norm partials the second pass sums (exact in f32: 7.75). */
const NORM = [1.5, 2.25, 4]

/** The router's routing (k slots) and a final routing of `slots` slots derived from it: drops, whole-token drops, additions, repeats. */
function routings(T: number, E: number, k: number, slots: number, D: number, seed: number): { original: Routing; final: Routing } {
  const random = mulberry32(seed)
  // three hot experts, so a capacity overflows
  const logits = Float32Array.from({ length: T * E }, (_, i) => 3 * random() + (i % E < 3 ? 2 : 0))
  const sourceDevice = D > 1 ? Int32Array.from({ length: T }, () => Math.floor(random() * D)) : undefined
  const original = { ...softmaxTopK({ tokens: T, experts: E, logits }, k, true), ...(sourceDevice ? { sourceDevice } : {}) }
  const ids = new Int32Array(T * slots).fill(-1)
  const w = new Float32Array(T * slots)
  for (let t = 0; t < T; t++) {
    for (let j = 0; j < k; j++) {
      ids[t * slots + j] = original.expertIds[t * k + j]
      w[t * slots + j] = original.weights[t * k + j] * 0.9
    }
    const r = random()
    if (r < 0.1) ids[t * slots + 1] = -1
    else if (r < 0.15) for (let j = 0; j < k; j++) ids[t * slots + j] = -1
    else if (r < 0.3 && slots > k) {
      let e = Math.floor(random() * E)
      while (original.expertIds.subarray(t * k, t * k + k).includes(e)) e = (e + 1) % E
      ids[t * slots + k] = e
      w[t * slots + k] = 0.125
    } else if (r < 0.35 && slots > k) {
      // the same expert twice (a host policy may leave that): one distinct pair, two rows
      ids[t * slots + k] = ids[t * slots]
      w[t * slots + k] = 0.0625
    }
    for (let j = 0; j < slots; j++) if (ids[t * slots + j] < 0) w[t * slots + j] = 0
  }
  return { original, final: { ...original, slots, expertIds: ids, weights: w } }
}

/** Inputs of the telemetry kernels for the fused-vs-two-passes comparison. */
interface TeleInputs {
  readonly T: number
  readonly E: number
  readonly k: number
  readonly S: number
  readonly devices: number
  readonly perPair: boolean
  readonly origIds: Int32Array
  readonly origW: Float32Array
  readonly ids: Int32Array
  readonly w: Float32Array
  readonly tokenRows: Uint32Array
  readonly counts: Uint32Array
  /** Placement words, then the source device of each token. */
  readonly aux: Uint32Array
  readonly srcBase: number
  /** The layer output (n4 vec4 elements), or null: no output, no norm. */
  readonly out: Float32Array | null
}

/** An f32 of random magnitude (2^−6 … 2^6), so that another summation order gives other bits. */
const wideF32 = (random: () => number): number => Math.fround((random() + 0.01) * 2 ** Math.floor(random() * 12 - 6))

/**
 * Random routings as policies and dispatchers leave them: dropped router slots (−1), the same
 * expert twice in a token (router and final slots), a final routing of S slots (S ≠ k: slots
 * dropped or added), pairs computed or not (tokenRows), D devices with a random replica table
 * and source devices, and a layer output of n4 vec4 elements (0: none).
 */
function randomInputs(T: number, E: number, k: number, S: number, D: number, perPair: boolean, n4: number, seed: number): TeleInputs {
  const random = mulberry32(seed)
  const expert = () => Math.floor(random() * E)
  const origIds = new Int32Array(T * k)
  const origW = new Float32Array(T * k)
  const ids = new Int32Array(T * S).fill(-1)
  const w = new Float32Array(T * S)
  const tokenRows = new Uint32Array(T * S)
  let row = 0
  for (let t = 0; t < T; t++) {
    for (let j = 0; j < k; j++) {
      const r = random()
      origIds[t * k + j] = r < 0.1 ? -1 : r < 0.2 && j > 0 ? origIds[t * k + j - 1] : expert()
      origW[t * k + j] = wideF32(random)
    }
    for (let j = 0; j < S; j++) {
      const r = random()
      // the router's pair kept, dropped, replaced by another expert, or a repeat of an earlier slot
      const e = r < 0.5 && j < k ? origIds[t * k + j] : r < 0.65 ? -1 : r < 0.8 && j > 0 ? ids[t * S + Math.floor(random() * j)] : expert()
      ids[t * S + j] = e
      if (e >= 0) {
        w[t * S + j] = wideF32(random)
        if (random() < 0.8) tokenRows[t * S + j] = ++row
      }
    }
  }
  const counts = Uint32Array.from({ length: E }, () => Math.floor(random() * 2 * T))
  // each expert on 1 … D devices (distinct, random order)
  const replicas = Array.from({ length: E }, () => {
    const devs = Array.from({ length: D }, (_, d) => d).sort(() => random() - 0.5)
    return devs.slice(0, 1 + Math.floor(random() * D))
  })
  const head = placementWords(replicas)
  const aux = new Uint32Array(head.length + Math.max(1, T))
  aux.set(head)
  for (let t = 0; t < T; t++) aux[head.length + t] = Math.floor(random() * D)
  const out = n4 > 0 ? Float32Array.from({ length: 4 * n4 }, () => (random() < 0.5 ? -1 : 1) * wideF32(random)) : null
  return { T, E, k, S, devices: D, perPair, origIds, origW, ids, w, tokenRows, counts, aux, srcBase: head.length, out }
}

/** The kernels' inputs of a router routing, the final routing, its plan and a placement. */
function planInputs(original: Routing, final: Routing, plan: DispatchPlan, placement: PlacementMap, perPair: boolean, out: Float32Array | null): TeleInputs {
  const head = placementWords(placement.replicas)
  const aux = new Uint32Array(head.length + Math.max(1, original.tokens))
  aux.set(head)
  if (final.sourceDevice) aux.set(final.sourceDevice, head.length)
  return {
    T: original.tokens, E: original.experts, k: original.slots, S: final.slots, devices: placement.devices, perPair,
    origIds: original.expertIds, origW: original.weights, ids: final.expertIds, w: final.weights,
    tokenRows: planTokenRows(plan, final, 'test'), counts: Uint32Array.from(plan.counts), aux, srcBase: head.length, out,
  }
}

describe.skipIf(!adapter)(`telemetry kernels on ${adapter}`, () => {
  let ctx: GpuContext
  beforeAll(async () => {
    ctx = new GpuContext(await acquireDevice())
  })
  afterAll(() => ctx?.dispose())

  /**
   * Runs the telemetry of `x` on zeroed counters (the block at word 4), fused (one kernel) or
   * as the two passes (the norm's partials in the first when `x.out`; else `normPartials` as
   * those partial sums, if any); returns the telemetry block (u32 and f32 views).
   */
  async function runTelemetry(x: TeleInputs, fused: boolean, normPartials: readonly number[] = []) {
    const { T, E, k, S } = x
    const n4 = x.out ? x.out.length / 4 : 0
    const teleBase = 4
    const normBase = teleBase + teleWords(E)
    const partBase = normBase + 256
    const counters = new Uint32Array(partBase + telemetryPartWords(T, k, S))
    new Float32Array(counters.buffer, normBase * 4, normPartials.length).set(normPartials)
    const up = (a: ArrayBufferView, label: string) => ctx.upload(a, label, 16)
    const bufs = {
      origIds: up(x.origIds, 'origIds'),
      origW: up(x.origW, 'origW'),
      ids: up(x.ids, 'ids'),
      w: up(x.w, 'w'),
      tokenRows: up(x.tokenRows, 'tokenRows'),
      aux: up(x.aux, 'aux'),
      counts: up(x.counts, 'counts'),
      counters: up(counters, 'counters'),
      ...(x.out ? { out: up(x.out, 'out') } : {}),
    }
    const groups = n4 > 0 ? normGroups(n4) : normPartials.length
    const p: TelemetryParams = { tokens: T, k, slots: S, experts: E, srcBase: x.srcBase, teleBase, partBase, normBase, normGroups: groups, devices: x.devices, perPair: x.perPair }
    const pairs = [bufs.origIds, bufs.origW, bufs.ids, bufs.w, bufs.tokenRows, bufs.aux]
    const rec = ctx.recorder('telemetry test')
    if (fused) {
      rec.run(telemetryFusedProgram(n4 > 0), { ...p, n4 }, [...pairs, bufs.counts, ...(bufs.out ? [bufs.out] : []), bufs.counters])
    } else {
      if (bufs.out) rec.run(telemetryPartialsProgram(true), { ...p, n4 }, [...pairs, bufs.out, bufs.counters])
      else rec.run(telemetryPartialsProgram(), p, [...pairs, bufs.counters])
      rec.run(telemetryProgram(), p, [bufs.counts, bufs.counters])
    }
    rec.read(bufs.counters, normBase * 4)
    const [got] = (await rec.submit()).reads
    for (const b of Object.values(bufs)) b.destroy()
    // the words before the block stay zero
    expect(Array.from(new Uint32Array(got, 0, teleBase))).toEqual([0, 0, 0, 0])
    return { words: new Uint32Array(got, teleBase * 4), floats: new Float32Array(got, teleBase * 4) }
  }

  /** The two passes over a routing pair and its plan (norm partials: NORM). */
  const run = (original: Routing, final: Routing, plan: DispatchPlan, placement: PlacementMap, perPair: boolean) =>
    runTelemetry(planInputs(original, final, plan, placement, perPair, null), false, NORM)

  /** The block against core's counts of the same routings and plan (crossing and the norm checked by the caller). */
  function expectCounts(words: Uint32Array, floats: Float32Array, original: Routing, plan: DispatchPlan): void {
    const E = original.experts
    const h = telemetryCounts({ original, plan, outcomes: [] })
    expect(Array.from(words.subarray(0, 5))).toEqual([h.pairsBefore, h.pairsAfter, h.dropped, h.added, h.tokensFullyDropped])
    expect(Array.from(words.subarray(12, 12 + E))).toEqual(h.loadBefore)
    expect(Array.from(words.subarray(12 + E, 12 + 2 * E))).toEqual(h.loadAfter)
    expect(Math.abs(floats[6] - h.massBefore)).toBeLessThan(1e-5 * h.massBefore)
    expect(Math.abs(floats[7] - h.massKept)).toBeLessThan(1e-5 * h.massKept)
    expect(Math.min(h.dropped, h.added, h.tokensFullyDropped, h.pairsAfter)).toBeGreaterThan(0)
  }

  it(`sums more pairs than ${TELE_MAX_GROUPS} workgroups of 256 take (T = 90,000, k 2, 3 slots, two devices), the same bits every run`, async () => {
    const [T, E, k, S] = [90_000, 8, 2, 3]
    expect(T * S).toBeGreaterThan(TELE_MAX_GROUPS * 256)
    expect(telemetryGroups(T, k, S)).toBe(TELE_MAX_GROUPS)
    // experts 0–3 on device 0, 4–7 on device 1; expert 1 also on 1, expert 6 also on 0
    const replicas = [[0], [0, 1], [0], [0], [1], [1], [1, 0], [1]]
    const placement: PlacementMap = { devices: 2, experts: E, replicas, strategy: 'test' }
    const { original, final } = routings(T, E, k, S, 2, 7)
    // padded per source device, overflow dropped
    const plan = staticDispatch(final, { placement, bytesPerToken: 1 }, { capacityFactor: 0.25 })
    expect(plan.dropped.length).toBeGreaterThan(0)
    expect(plan.paddingRows).toBeGreaterThan(0)
    const perDevice = await run(original, final, plan, placement, false)
    expectCounts(perDevice.words, perDevice.floats, original, plan)
    expect(perDevice.floats[8]).toBe(7.75)
    expect(perDevice.words[5]).toBe(tokenTraffic(final, placement, 1).bytesCrossDevice)
    const perPair = await run(original, final, plan, placement, true)
    expectCounts(perPair.words, perPair.floats, original, plan)
    let crossing = 0
    for (let t = 0; t < T; t++) {
      for (let j = 0; j < S; j++) {
        const e = final.expertIds[t * S + j]
        if (e >= 0 && replicas[e][t % replicas[e].length] !== final.sourceDevice![t]) crossing++
      }
    }
    expect(perPair.words[5]).toBe(crossing)
    expect(crossing).toBeGreaterThan(perDevice.words[5])
    // a fixed summation order: the f32 sums do not vary run to run
    expect(Array.from(perPair.words.subarray(6, 9))).toEqual(Array.from(perDevice.words.subarray(6, 9)))
  })

  it('the first pass also sums the output norm: 13 norm workgroups before 47 pair workgroups in one dispatch, the same bits every run', async () => {
    const [T, E, k, S] = [3000, 8, 2, 4]
    const n4 = 50_000
    expect(normGroups(n4)).toBe(13)
    expect(telemetryGroups(T, k, S)).toBe(47)
    const replicas = [[0], [0, 1], [0], [0], [1], [1], [1, 0], [1]]
    const placement: PlacementMap = { devices: 2, experts: E, replicas, strategy: 'test' }
    const { original, final } = routings(T, E, k, S, 2, 13)
    const plan = staticDispatch(final, { placement, bytesPerToken: 1 }, { capacityFactor: 0.5 })
    const random = mulberry32(21)
    const out = Float32Array.from({ length: 4 * n4 }, () => random() - 0.5)
    const x = planInputs(original, final, plan, placement, false, out)
    const a = await runTelemetry(x, false)
    expectCounts(a.words, a.floats, original, plan)
    expect(a.words[5]).toBe(tokenTraffic(final, placement, 1).bytesCrossDevice)
    let normSq = 0
    for (const v of out) normSq += v * v
    expect(Math.abs(a.floats[8] - normSq)).toBeLessThan(1e-5 * normSq)
    expect(Array.from((await runTelemetry(x, false)).words)).toEqual(Array.from(a.words))
  })

  it('counts the loads of more than 256 experts (E = 300, one device)', async () => {
    const [T, E, k] = [3000, 300, 4]
    const placement: PlacementMap = { devices: 1, experts: E, replicas: Array.from({ length: E }, () => [0]), strategy: 'test' }
    const { original, final } = routings(T, E, k, k + 1, 1, 11)
    const plan = staticDispatch(final, { placement, bytesPerToken: 1 }, { capacityFactor: 0.01 })
    const { words, floats } = await run(original, final, plan, placement, false)
    expectCounts(words, floats, original, plan)
    expect(floats[8]).toBe(7.75)
    expect(words[5]).toBe(0)
    expect(original.expertIds.some((e) => e >= 256)).toBe(true)
  })

  const maxStorage = () => ctx.device.limits.maxStorageBuffersPerShaderStage

  it('takes the fused kernel only where each telemetry kernel would run as one workgroup', () => {
    const small = { tokens: 128, k: 2, slots: 2, experts: 256, n4: 4096 }
    expect(fusedTelemetry(small, 16)).toBe(true)
    expect(fusedTelemetry({ ...small, tokens: 129 }, 16)).toBe(false) // 258 pairs: two workgroups
    expect(fusedTelemetry({ ...small, k: 1, slots: 3, tokens: 86 }, 16)).toBe(false) // 86 × max(k, S) = 258
    expect(fusedTelemetry({ ...small, n4: 4097 }, 16)).toBe(true) // two norm workgroups, run one after the other
    expect(fusedTelemetry({ ...small, n4: TELE_FUSED_MAX_NORM_GROUPS * 4096 }, 16)).toBe(true)
    expect(fusedTelemetry({ ...small, n4: TELE_FUSED_MAX_NORM_GROUPS * 4096 + 1 }, 16)).toBe(false) // one norm workgroup too many
    expect(fusedTelemetry({ ...small, experts: TELE_FUSED_MAX_EXPERTS + 1 }, 16)).toBe(false)
    // with an output it binds 9 storage buffers (WebGPU's default limit is 8); without, 8
    expect(fusedTelemetry(small, TELE_FUSED_NORM_STORAGE_BUFFERS - 1)).toBe(false)
    expect(fusedTelemetry({ ...small, n4: 0 }, 8)).toBe(true)
    expect(fusedTelemetry({ ...small, tokens: 1, n4: 0, experts: 300 }, 16)).toBe(false)
  })

  it('fused: the two passes\' telemetry block bit for bit over random routings (−1 ids, repeats, S ≠ k, 1–4 devices, per pair or per device, E ≤ 256, with and without an output)', async () => {
    // [T, E, k, S, devices, perPair, n4]; T·max(k, S) ≤ 256 (one pair workgroup), n4 ≤ 2·4096
    // (up to two norm workgroups: 4097 and 8192 two)
    const cases: [number, number, number, number, number, boolean, number][] = [
      [1, 8, 2, 2, 1, false, 8],
      [1, 64, 8, 8, 1, false, 512],
      [1, 256, 8, 6, 4, true, 1024],
      [5, 8, 2, 3, 2, false, 40],
      [37, 8, 2, 2, 2, true, 296],
      [64, 16, 4, 2, 2, false, 0],
      [32, 256, 8, 8, 4, false, 4096],
      [85, 7, 1, 3, 3, true, 4095],
      [128, 2, 2, 1, 1, false, 0],
      [16, 256, 16, 12, 2, true, 2048],
      [256, 256, 1, 1, 4, false, 3000],
      [50, 60, 5, 4, 3, false, 0],
      [8, 8, 2, 2, 1, false, 4097],
      [20, 64, 8, 8, 2, true, 8192],
    ]
    for (let i = 0; i < cases.length; i++) {
      const [T, E, k, S, D, perPair, n4] = cases[i]
      expect(fusedTelemetry({ tokens: T, k, slots: S, experts: E, n4 }, maxStorage()), `case ${i}`).toBe(true)
      const x = randomInputs(T, E, k, S, D, perPair, n4, 1000 + i)
      const two = await runTelemetry(x, false)
      const fused = await runTelemetry(x, true)
      expect(Array.from(fused.words), `case ${i}: [${cases[i].join(', ')}]`).toEqual(Array.from(two.words))
      // a real comparison: counts, loads, the mass sums and the norm are there
      const { words, floats } = fused
      expect(words[0] * words[1], `case ${i}`).toBeGreaterThan(0)
      expect(floats[6] * floats[7], `case ${i}`).toBeGreaterThan(0)
      expect(floats[8] > 0, `case ${i}`).toBe(n4 > 0)
      expect(words.subarray(12, 12 + 2 * E).some((v) => v > 0), `case ${i}`).toBe(true)
    }
  })

  it('fused: the block of a policy\'s routing and a padded dispatcher\'s plan, bit for bit, and core\'s counts', async () => {
    const [T, E, k, S] = [80, 8, 2, 3]
    const replicas = [[0], [0, 1], [0], [0], [1], [1], [1, 0], [1]]
    const placement: PlacementMap = { devices: 2, experts: E, replicas, strategy: 'test' }
    const { original, final } = routings(T, E, k, S, 2, 5)
    const plan = staticDispatch(final, { placement, bytesPerToken: 1 }, { capacityFactor: 0.5 })
    expect(plan.dropped.length).toBeGreaterThan(0)
    const random = mulberry32(9)
    const out = Float32Array.from({ length: 4 * 100 }, () => random() - 0.5)
    for (const perPair of [false, true]) {
      const x = planInputs(original, final, plan, placement, perPair, out)
      expect(fusedTelemetry({ tokens: T, k, slots: S, experts: E, n4: 100 }, maxStorage())).toBe(true)
      const fused = await runTelemetry(x, true)
      expect(Array.from(fused.words)).toEqual(Array.from((await runTelemetry(x, false)).words))
      expectCounts(fused.words, fused.floats, original, plan)
      if (!perPair) expect(fused.words[5]).toBe(tokenTraffic(final, placement, 1).bytesCrossDevice)
      const normSq = out.reduce((a, v) => a + v * v, 0)
      expect(Math.abs(fused.floats[8] - normSq)).toBeLessThan(1e-5 * normSq)
    }
  })

  it('E > 256 stays on the two passes (their block, as the host counts it)', async () => {
    const [T, E, k, S] = [20, 300, 4, 5]
    expect(fusedTelemetry({ tokens: T, k, slots: S, experts: E, n4: 0 }, maxStorage())).toBe(false)
    const x = randomInputs(T, E, k, S, 1, false, 0, 77)
    const { words } = await runTelemetry(x, false)
    const loadBefore = new Array<number>(E).fill(0)
    for (const e of x.origIds) if (e >= 0) loadBefore[e]++
    expect(Array.from(words.subarray(12, 12 + E))).toEqual(loadBefore)
    expect(loadBefore.slice(256).some((v) => v > 0)).toBe(true)
  })
})
