import { contiguousPlacement, createRouting, mulberry32, type ModelShape, type Routing } from '@moe-route/core'
import { createTokenDrop } from '@moe-route/policy-capacity-drop'
import { readFileSync, readdirSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import * as shipped from './calibration/default.js'
import { H100_HF_GROUPED_MM, H100_WEBGPU, H200_HF_GROUPED_MM, H200_WEBGPU, H200_WEBGPU_INT8 } from './calibration/default.js'
import { costModelFromCalibration, fitCalibration, predictCall, type CostModel } from './cost-model.js'
import { evaluateRouting } from './expert-parallel.js'
import { renderReport } from './report.js'
import { createSimulator, simulate, simulateSync } from './simulator.js'

const shape = (experts: number, topK: number): ModelShape => ({ experts, topK, hidden: 100, intermediate: 10, normalizeTopK: true })
/** 1 ms per row, no overhead: device time = rows. */
const rowsCost: CostModel = { name: 'rows', callOverheadMs: 0, expertMs: (rows) => rows }
/** 1 byte per ms per direction, no latency. */
const slowLink = { name: 'test', bandwidth: 1000, latencyMs: 0 }

function routing(E: number, k: number, ids: number[][], sourceDevice?: number[]): Routing {
  const T = ids.length
  return createRouting({
    tokens: T,
    experts: E,
    topK: k,
    expertIds: Int32Array.from(ids.flat()),
    weights: new Float32Array(T * k).fill(1 / k),
    scores: new Float32Array(T * E).fill(1 / E),
    normalizeTopK: true,
    ...(sourceDevice ? { sourceDevice: Int32Array.from(sourceDevice) } : {}),
  })
}

describe('evaluateRouting', () => {
  // E=4 on D=2: experts 0,1 on device 0; 2,3 on device 1. Tokens 0,1 live on device 0, 2,3 on 1.
  const r = routing(4, 2, [[0, 1], [0, 2], [2, 3], [1, 3]])
  const env = { placement: contiguousPlacement(4, 2), shape: shape(4, 2), cost: rowsCost, link: slowLink, activationBytes: 1 }

  it('counts rows per device, C_T, intra-collaboration and deduplicated all-to-all bytes', () => {
    const c = evaluateRouting(r, env)
    expect(c.deviceRows).toEqual([4, 4])
    expect(c.cT).toBe(1.5) // devices per token: 1, 2, 1, 2
    expect(c.intraPairs / c.coPairs).toBe(0.5)
    // Cross-device copies: token 1 → device 1, token 3 → device 0 (hidden 100 bytes each), ×2 for combine.
    expect(c.a2aBytes).toBe(400)
    expect(c.dispatchMs).toBeCloseTo(100) // 100 bytes at 1000 B/s = 0.1 s
    expect(c.latencyMs).toBeCloseTo(100 + 4 + 100)
  })

  it('sends one copy per pair without dedupe', () => {
    const r2 = routing(4, 2, [[2, 3]], [0])
    expect(evaluateRouting(r2, { ...env, dedupe: true }).a2aBytes).toBe(200)
    expect(evaluateRouting(r2, { ...env, dedupe: false }).a2aBytes).toBe(400)
  })

  it('splits a replicated expert round-robin over its replicas', () => {
    const placement = { devices: 2, experts: 2, replicas: [[0, 1], [1]], strategy: 'test' }
    const r3 = routing(2, 1, [[0], [0], [0], [0], [1]])
    const c = evaluateRouting(r3, { ...env, placement, shape: shape(2, 1) })
    expect(c.deviceRows).toEqual([2, 3])
    expect(c.computeMs).toBe(3)
  })
})

/** A skewed workload: expert 0 gets about half the tokens. */
function* skewed(E: number, k: number, T: number, batches: number, seed: number): Generator<Routing> {
  const rnd = mulberry32(seed)
  for (let b = 0; b < batches; b++) {
    const ids: number[][] = []
    const scores = new Float32Array(T * E)
    for (let t = 0; t < T; t++) {
      const set = new Set<number>()
      if (rnd() < 0.5) set.add(0)
      while (set.size < k) set.add(Math.floor(rnd() * E))
      ids.push([...set])
      for (let e = 0; e < E; e++) scores[t * E + e] = rnd() * 0.1 + (set.has(e) ? 1 : 0)
    }
    yield { ...routing(E, k, ids), scores }
  }
}

describe('simulator', () => {
  it('reports speedup 1 and no drops against itself, and drops with capacity-drop at γ = 1', async () => {
    const model = shape(8, 2)
    const placement = contiguousPlacement(8, 8)
    const same = simulateSync(skewed(8, 2, 256, 4, 1), { model, placement, cost: rowsCost })
    expect(same.summary.speedup).toBe(1)
    expect(same.summary.droppedFraction).toBe(0)
    const capped = await simulate(skewed(8, 2, 256, 4, 1), { model, placement, cost: rowsCost, policies: [createTokenDrop({ capacityFactor: 1 })] })
    expect(capped.summary.droppedFraction).toBeGreaterThan(0.1)
    expect(capped.summary.speedup).toBeGreaterThan(1.5)
    expect(capped.summary.maxLoad).toBeLessThan(capped.summary.baselineMaxLoad)
    expect(capped.batches).toHaveLength(4)
    // Max Load ≥ Avg Max Load ≥ 1/D.
    expect(capped.summary.maxLoad).toBeGreaterThanOrEqual(capped.summary.avgMaxLoad)
    expect(capped.summary.avgMaxLoad).toBeGreaterThanOrEqual(1 / 8)
  })

  it('routes TokenBatch inputs with softmax top-k and rejects mismatched placements', () => {
    const model = shape(4, 2)
    const sim = createSimulator({ model, placement: contiguousPlacement(4, 2) })
    const rec = sim.step({ id: 7, tokens: 2, logits: Float32Array.from([5, 4, 0, 0, 0, 0, 5, 4]) })
    expect(rec.batchId).toBe(7)
    expect(rec.deviceRows).toEqual([2, 2])
    expect(rec.cT).toBe(1)
    expect(() => createSimulator({ model, placement: contiguousPlacement(8, 2) })).toThrow(/8 experts/)
  })

  it('writes an HTML report with SVG plots', () => {
    const res = simulateSync(skewed(8, 2, 64, 3, 2), { model: shape(8, 2), placement: contiguousPlacement(8, 4), policies: [createTokenDrop({ capacityFactor: 1 })] })
    const html = renderReport(res, 'test <report>')
    expect(html).toContain('<svg')
    expect(html).toContain('test &lt;report&gt;')
    expect(html.match(/<rect/g)!.length).toBeGreaterThan(3 * 4)
  })
})

describe('cost model', () => {
  it('ships the calibration JSON and the TS default with the same content', () => {
    const json = JSON.parse(readFileSync(new URL('./calibration/h100-hf-grouped-mm.json', import.meta.url), 'utf8'))
    expect(H100_HF_GROUPED_MM).toEqual(json)
    expect(H100_HF_GROUPED_MM.provenance).toMatch(/^MEASURED/)
    const webgpu = JSON.parse(readFileSync(new URL('./calibration/h100-webgpu.json', import.meta.url), 'utf8'))
    expect(H100_WEBGPU).toEqual(webgpu)
    // A three-parameter roofline: launch overheads and kernel switch-overs are not modelled.
    // grouped_mm fits every measured point within 35%; the WebGPU layer within 60% (its T = 8
    // point, 4.09 ms, is slower than its T = 32 point, which no roofline reproduces).
    for (const [cal, bound] of [[H100_HF_GROUPED_MM, 0.35], [H100_WEBGPU, 0.6]] as const) {
      for (const p of cal.points) expect(Math.abs(p.predictedMs! - p.ms) / p.ms, JSON.stringify(p)).toBeLessThan(bound)
    }
  })

  it('ships the H200 calibrations (every JSON file is a TS constant), each within its stated error', () => {
    const dir = new URL('./calibration/', import.meta.url)
    const files = readdirSync(dir).filter((f) => f.endsWith('.json'))
    expect(files.sort()).toEqual(['h100-hf-grouped-mm.json', 'h100-webgpu.json', 'h200-hf-grouped-mm.json', 'h200-webgpu-int8.json', 'h200-webgpu.json'])
    for (const f of files) {
      const name = f.replace(/\.json$/, '').toUpperCase().replace(/-/g, '_') as keyof typeof shipped
      expect(shipped[name], f).toEqual(JSON.parse(readFileSync(new URL(f, dir), 'utf8')))
      expect(shipped[name].provenance).toMatch(/^MEASURED/)
    }
    // H200 (2026-12-01): grouped_mm within 25%; the f16 WebGPU layer within 65% (its T = 8 point
    // is again slower than a roofline allows); int8 within 45% (GEMV below 8 rows, tensor cores above)
    for (const [cal, bound] of [[H200_HF_GROUPED_MM, 0.25], [H200_WEBGPU, 0.65], [H200_WEBGPU_INT8, 0.45]] as const) {
      for (const p of cal.points) expect(Math.abs(p.predictedMs! - p.ms) / p.ms, JSON.stringify(p)).toBeLessThan(bound)
    }
    expect(H200_WEBGPU_INT8.bytesPerWeight).toBe(1)
  })

  it('fits flops and overhead that reproduce synthetic measurements', () => {
    const truth = { shape: { hidden: 1024, intermediate: 2048, topK: 2 }, bytesPerWeight: 2, weightBandwidth: 1e12, flops: 2e14, callOverheadMs: 0.1 }
    const points = [16, 256, 4096, 16384].map((tokens) => ({ tokens, activeExperts: 8, ms: predictCall(truth, { tokens, activeExperts: 8 }) }))
    const cal = fitCalibration({ device: 'synthetic', provenance: 'test', shape: truth.shape, bytesPerWeight: 2, weightBandwidth: 1e12, points })
    expect(cal.flops / 2e14).toBeCloseTo(1, 2)
    expect(cal.callOverheadMs).toBeCloseTo(0.1, 3)
    const model = costModelFromCalibration(cal)
    expect(model.expertMs(0, { experts: 8, topK: 2, hidden: 1024, intermediate: 2048, normalizeTopK: false })).toBe(0)
  })

  it('is memory-bound for few rows and compute-bound for many at the Mixtral shape', () => {
    const m = costModelFromCalibration(H100_HF_GROUPED_MM)
    const mixtral = { experts: 8, topK: 2, hidden: 4096, intermediate: 14336, normalizeTopK: true }
    expect(m.expertMs(1, mixtral)).toBeCloseTo(m.expertMs(100, mixtral))
    expect(m.expertMs(4000, mixtral)).toBeCloseTo(2 * m.expertMs(2000, mixtral))
  })
})

describe('load model (counts-only records)', () => {
  const model = { experts: 4, topK: 2, hidden: 64, intermediate: 128, normalizeTopK: true }
  it('splits replicated experts round-robin, estimates all-to-all, and leaves C_T unknown', () => {
    const placement = { devices: 2, experts: 4, replicas: [[0, 1], [0], [1], [1]], strategy: 'test' }
    const sim = createSimulator({ model, placement })
    const b = sim.stepLoads([5, 2, 3, 0], 5)
    expect(b.deviceRows).toEqual([3 + 2, 2 + 3]) // expert 0: 3 rows on device 0, 2 on device 1
    expect(b.pairs).toBe(10)
    expect(b.a2aBytes).toBeGreaterThan(0)
    const r = sim.result().summary
    expect(Number.isNaN(r.cT)).toBe(true)
    expect(r.batches).toBe(1)
  })

  it('refuses policies, which need per-token routing', () => {
    const sim = createSimulator({ model, placement: contiguousPlacement(4, 2), policies: [{ name: 'x', apply: (r: Routing) => ({ routing: r }) } as never] })
    expect(() => sim.stepLoads([1, 1, 1, 1], 2)).toThrow(/per-token routing/)
  })
})
