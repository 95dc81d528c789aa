/**
 * The two telemetry kernels on their own against core's host counts of the same routings and
 * plan: a batch with more pairs than the first pass has workgroups (its grid-stride loop),
 * with policy drops, added and repeated pairs, dispatcher overflow and padding, two devices with a
 * replicated expert and source devices (traffic per destination device and per pair); and
 * more than 256 experts (loads past the workgroup counters).
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { mulberry32, softmaxTopK, telemetryCounts, tokenTraffic, type DispatchPlan, type PlacementMap, type Routing } from '@moe-route/core'
import { staticDispatch } from '@moe-route/policy-dynamic-gating'
import { acquireDevice } from '../gpu/device.js'
import { GpuContext } from '../gpu/context.js'
import { webgpuAdapterForTests } from '../testing/gpu-env.js'
import { planTokenRows } from './device-pipeline.js'
import { placementWords, telemetryGroups, telemetryPartialsProgram, telemetryPartWords, telemetryProgram, type TelemetryParams } from './grouping.program.js'
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

describe.skipIf(!adapter)(`telemetry kernels on ${adapter}`, () => {
  let ctx: GpuContext
  beforeAll(async () => {
    ctx = new GpuContext(await acquireDevice())
  })
  afterAll(() => ctx?.dispose())

  /** Runs both passes; returns the telemetry block (u32 and f32 views). */
  async function run(original: Routing, final: Routing, plan: DispatchPlan, placement: PlacementMap, perPair: boolean) {
    const { tokens: T, experts: E, slots: k } = original
    const S = final.slots
    const head = placementWords(placement.replicas)
    const aux = new Uint32Array(head.length + Math.max(1, T))
    aux.set(head)
    if (final.sourceDevice) aux.set(final.sourceDevice, head.length)
    const teleBase = 0
    const normBase = teleWords(E)
    const partBase = normBase + 256
    const counters = new Uint32Array(partBase + telemetryPartWords(T, k, S))
    new Float32Array(counters.buffer, normBase * 4, NORM.length).set(NORM)
    const up = (a: ArrayBufferView, label: string) => ctx.upload(a, label, 16)
    const bufs = {
      origIds: up(original.expertIds, 'origIds'),
      origW: up(original.weights, 'origW'),
      ids: up(final.expertIds, 'ids'),
      w: up(final.weights, 'w'),
      tokenRows: up(planTokenRows(plan, final, 'test'), 'tokenRows'),
      aux: up(aux, 'aux'),
      counts: up(plan.counts, 'counts'),
      counters: up(counters, 'counters'),
    }
    const p: TelemetryParams = { tokens: T, k, slots: S, experts: E, srcBase: head.length, teleBase, partBase, normBase, normGroups: NORM.length, devices: placement.devices, perPair }
    const rec = ctx.recorder('telemetry test')
    rec.run(telemetryPartialsProgram(), p, [bufs.origIds, bufs.origW, bufs.ids, bufs.w, bufs.tokenRows, bufs.aux, bufs.counters])
    rec.run(telemetryProgram(), p, [bufs.counts, bufs.counters])
    rec.read(bufs.counters, teleWords(E) * 4)
    const [got] = (await rec.submit()).reads
    for (const b of Object.values(bufs)) b.destroy()
    return { words: new Uint32Array(got), floats: new Float32Array(got) }
  }

  /** The block against core's counts of the same routings and plan (crossing checked by the caller). */
  function expectCounts(words: Uint32Array, floats: Float32Array, original: Routing, plan: DispatchPlan): void {
    const E = original.experts
    const h = telemetryCounts({ original, plan, outcomes: [] })
    expect(Array.from(words.subarray(0, 5))).toEqual([h.pairsBefore, h.pairsAfter, h.dropped, h.added, h.tokensFullyDropped])
    expect(Array.from(words.subarray(12, 12 + E))).toEqual(h.loadBefore)
    expect(Array.from(words.subarray(12 + E, 12 + 2 * E))).toEqual(h.loadAfter)
    expect(Math.abs(floats[6] - h.massBefore)).toBeLessThan(1e-5 * h.massBefore)
    expect(Math.abs(floats[7] - h.massKept)).toBeLessThan(1e-5 * h.massKept)
    expect(floats[8]).toBe(7.75)
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

  it('counts the loads of more than 256 experts (E = 300, one device)', async () => {
    const [T, E, k] = [3000, 300, 4]
    const placement: PlacementMap = { devices: 1, experts: E, replicas: Array.from({ length: E }, () => [0]), strategy: 'test' }
    const { original, final } = routings(T, E, k, k + 1, 1, 11)
    const plan = staticDispatch(final, { placement, bytesPerToken: 1 }, { capacityFactor: 0.01 })
    const { words, floats } = await run(original, final, plan, placement, false)
    expectCounts(words, floats, original, plan)
    expect(words[5]).toBe(0)
    expect(original.expertIds.some((e) => e >= 256)).toBe(true)
  })
})
