/**
 * Every kernel against the CPU reference on seeded inputs (lavapipe in CI, any adapter here).
 * Tolerances: f32 max |gpu − cpu| ≤ 1e-4 · max|cpu|; f16 weights: the same bound against the
 * CPU on f16-rounded weights, and relative L2 ≤ 5e-3 against the unrounded f32 weights.
 * Top-k and the dispatch kernels must give exactly the CPU's pairs and rows.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { mulberry32, softmaxRows, softmaxTopK, type LayerWeights, type ModelShape } from '@moe-route/core'
import { expertsForward, gateMatmul, randomHidden, randomLayerWeights, relativeL2 } from '@moe-route/backend-cpu'
import { acquireDevice } from '../gpu/device.js'
import { GpuContext } from '../gpu/context.js'
import { WebGpuMoeLayer, withActiveList } from '../layer.js'
import { referenceDispatch, resolvePolicy, type LayerPolicy } from '../policy.js'
import { roundToF16 } from '../f16.js'
import { webgpuAdapterForTests } from '../testing/gpu-env.js'
import { offsetsProgram, scatterProgram, selectProgram } from './dispatch/dispatch.program.js'
import { softmaxProgram, softmaxTopkProgram, softmaxTopkSubgroupProgram, topkProgram } from './softmax-topk/softmax-topk.program.js'
import { GEMM_BM, GEMM_BN } from './expert-ffn/expert-ffn.program.js'

// WebGPU tests compile real shaders: on lavapipe with a cold Mesa shader cache (CI) a
// pipeline can take tens of seconds while the other test worker compiles too.
vi.setConfig({ testTimeout: 180_000 })

const adapter = await webgpuAdapterForTests()

function maxAbsErr(a: Float32Array, b: Float32Array): { err: number; scale: number } {
  let err = 0
  let scale = 0
  for (let i = 0; i < b.length; i++) {
    err = Math.max(err, Math.abs(a[i] - b[i]))
    scale = Math.max(scale, Math.abs(b[i]))
  }
  if (a.length !== b.length) err = Infinity
  return { err, scale: Math.max(scale, 1e-30) }
}

function expectClose(gpu: Float32Array, cpu: Float32Array, tol = 1e-4): void {
  const { err, scale } = maxAbsErr(gpu, cpu)
  expect(err, `max abs err ${err} vs scale ${scale}`).toBeLessThanOrEqual(tol * scale)
  expect(gpu.every(Number.isFinite)).toBe(true)
}

const roundWeights = (w: LayerWeights): LayerWeights => ({
  ...w,
  experts: w.experts.map((e) => ({ gate: roundToF16(e.gate), up: roundToF16(e.up), down: roundToF16(e.down) })),
})

describe.skipIf(!adapter)(`WebGPU kernels vs CPU reference (${adapter})`, () => {
  let ctx: GpuContext
  let layer: WebGpuMoeLayer
  let layerNoSg: WebGpuMoeLayer
  const shape: ModelShape = { experts: 8, topK: 2, hidden: 64, intermediate: 96, normalizeTopK: true }
  const weights = randomLayerWeights(shape, { seed: 3, std: 0.05 })

  beforeAll(async () => {
    ctx = new GpuContext(await acquireDevice(), { profile: true })
    layer = new WebGpuMoeLayer(ctx)
    layerNoSg = new WebGpuMoeLayer(ctx, { subgroups: false })
  })
  afterAll(() => {
    ctx?.dispose()
    ctx?.device.destroy()
  })

  it('gate matmul (subgroup and workgroup-memory reductions; a workgroup per output up to 2048 outputs, teams beyond)', async () => {
    for (const T of [37, 300]) {
      const x = randomHidden(T, shape.hidden, 11)
      const cpu = gateMatmul(x, weights.router, T, shape.hidden, shape.experts)
      expectClose((await layer.gate(x, T, weights)).logits, cpu)
      expectClose((await layerNoSg.gate(x, T, weights)).logits, cpu)
    }
  })

  async function routeOnGpu(scoresOrLogits: Float32Array, T: number, E: number, k: number, normalize: boolean, fromLogits: boolean) {
    const rec = ctx.recorder('test-route')
    const input = ctx.upload(scoresOrLogits, 'input')
    let scores = input
    if (fromLogits) {
      scores = ctx.storage(T * E * 4, 'scores')
      rec.run(softmaxProgram(), { tokens: T, experts: E }, [input, scores])
    }
    const topIdx = ctx.storage(T * k * 4, 'topIdx')
    const topW = ctx.storage(T * k * 4, 'topW')
    rec.run(topkProgram(), { tokens: T, experts: E, k, normalize }, [scores, topIdx, topW])
    rec.read(scores, T * E * 4)
    rec.read(topIdx, T * k * 4)
    rec.read(topW, T * k * 4)
    const { reads } = await rec.submit()
    return { scores: new Float32Array(reads[0]), ids: new Int32Array(reads[1]), w: new Float32Array(reads[2]) }
  }

  it('softmax matches the CPU within 4e-6 of the largest probability (f32 exp); top-k picks exactly the CPU pairs, ties included (E 256, k 16)', async () => {
    for (const [T, E, k, normalize] of [[41, 8, 2, true], [23, 64, 8, false], [9, 256, 16, true]] as const) {
      const rnd = mulberry32(T * 131 + E)
      // quantised logits: many exact ties
      const logits = Float32Array.from({ length: T * E }, () => Math.round((rnd() - 0.5) * 8) / 2)
      const cpuScores = softmaxRows(logits, T, E)
      const g = await routeOnGpu(logits, T, E, k, normalize, true)
      expectClose(g.scores, cpuScores, 4e-6)
      // top-k on the CPU's scores must be identical pair for pair
      const onCpuScores = await routeOnGpu(cpuScores, T, E, k, normalize, false)
      const ref = softmaxTopK({ tokens: T, experts: E, scores: cpuScores }, k, normalize)
      expect(Array.from(onCpuScores.ids)).toEqual(Array.from(ref.expertIds))
      expectClose(onCpuScores.w, ref.weights, 1e-6)
      // the fused softmax-topk kernel (the layer's) gives exactly the two kernels' results
      const rec = ctx.recorder('test-fused-route')
      const input = ctx.upload(logits, 'input')
      const [scores, topIdx, topW] = [ctx.storage(T * E * 4, 'scores'), ctx.storage(T * k * 4, 'topIdx'), ctx.storage(T * k * 4, 'topW')]
      const [scores2, topIdx2, topW2] = [ctx.storage(T * E * 4, 'scores2'), ctx.storage(T * k * 4, 'topIdx2'), ctx.storage(T * k * 4, 'topW2')]
      rec.run(softmaxTopkProgram(), { tokens: T, experts: E, k, normalize }, [input, scores, topIdx, topW])
      rec.read(scores, T * E * 4)
      rec.read(topIdx, T * k * 4)
      rec.read(topW, T * k * 4)
      // … and so does the one-subgroup-per-token kernel (decode sizes)
      if (ctx.features.subgroups) rec.run(softmaxTopkSubgroupProgram(ctx.features.subgroupSize!), { tokens: T, experts: E, k, normalize }, [input, scores2, topIdx2, topW2])
      rec.read(scores2, T * E * 4)
      rec.read(topIdx2, T * k * 4)
      rec.read(topW2, T * k * 4)
      const { reads } = await rec.submit()
      expect(Array.from(new Float32Array(reads[0]))).toEqual(Array.from(g.scores))
      expect(Array.from(new Int32Array(reads[1]))).toEqual(Array.from(g.ids))
      expect(Array.from(new Float32Array(reads[2]))).toEqual(Array.from(g.w))
      if (ctx.features.subgroups) {
        expect(Array.from(new Float32Array(reads[3]))).toEqual(Array.from(g.scores))
        expect(Array.from(new Int32Array(reads[4]))).toEqual(Array.from(g.ids))
        expect(Array.from(new Float32Array(reads[5]))).toEqual(Array.from(g.w))
      }
    }
  })

  const policies: [string, LayerPolicy][] = [
    ['dynamic, no drop', {}],
    ['capacity drop γ=1.0', { capacityFactor: 1.0 }],
    ['capacity drop γ=0.5 (heavy drop)', { capacityFactor: 0.5 }],
    ['static gating γ=1.0 (padding)', { mode: 'static', capacityFactor: 1.0 }],
    ['static gating γ=1.5', { mode: 'static', capacityFactor: 1.5 }],
  ]

  it.each(policies)('dispatch kernels give exactly the CPU plan: %s', async (_name, policy) => {
    const T = 300
    const E = 8
    const k = 2
    const rnd = mulberry32(99)
    // skewed, tied scores: experts 0 and 1 are popular, values on a coarse grid
    const logits = Float32Array.from({ length: T * E }, (_, i) => Math.round((rnd() * 3 + (i % E < 2 ? 1.5 : 0)) * 4) / 4)
    const scores = softmaxRows(logits, T, E)
    const routing = softmaxTopK({ tokens: T, experts: E, scores }, k, true)
    const pol = resolvePolicy(policy, T, k, E)
    const ref = referenceDispatch(routing, pol)
    const C = pol.capacity ?? 0
    const R = pol.isStatic ? E * C : T * k
    const rec = ctx.recorder('test-dispatch')
    const topIdx = ctx.upload(routing.expertIds, 'topIdx')
    const topW = ctx.upload(routing.weights, 'topW')
    const sc = ctx.upload(scores, 'scores')
    const cand = ctx.storage(E * T * 4, 'cand')
    const kept = ctx.storage(E * T * 4, 'kept')
    const counts = ctx.storage(E * 4, 'counts')
    const offsets = ctx.storage((2 * E + 1) * 4, 'offsets')
    const args = ctx.storage(32, 'args', 0x100)
    const rowToken = ctx.storage(R * 4, 'rowToken')
    const rowWeight = ctx.storage(R * 4, 'rowWeight')
    const tokenRows = ctx.storage(T * k * 4, 'tokenRows')
    rec.run(selectProgram(), { tokens: T, k, experts: E, mode: pol.select, capacity: C }, [topIdx, sc, cand, kept, counts])
    rec.run(offsetsProgram(), { experts: E, isStatic: pol.isStatic, capacity: C, colsGateUp: 96, colsDown: 64, bm: GEMM_BM, bn: GEMM_BN }, [counts, offsets, args])
    rec.clear(tokenRows, T * k * 4)
    rec.run(scatterProgram(), { tokens: T, k, experts: E, width: Math.max(T, C) }, [topIdx, topW, offsets, counts, kept, rowToken, rowWeight, tokenRows])
    for (const b of [counts, offsets, rowToken, rowWeight, tokenRows, args]) rec.read(b, b === counts ? E * 4 : b === offsets ? (2 * E + 1) * 4 : b === tokenRows ? T * k * 4 : b === args ? 32 : R * 4)
    const { reads } = await rec.submit()
    const rows = ref.plan.offsets[E]
    expect(Array.from(new Int32Array(reads[0]))).toEqual(Array.from(ref.plan.counts))
    // offsets, then the non-empty experts in ascending id (−1 after)
    expect(Array.from(new Int32Array(reads[1]))).toEqual(Array.from(withActiveList(ref.plan.offsets, E)))
    expect(Array.from(new Int32Array(reads[2]).subarray(0, rows))).toEqual(Array.from(ref.plan.rowToken))
    expect(Array.from(new Float32Array(reads[3]).subarray(0, rows))).toEqual(Array.from(ref.plan.rowWeight))
    expect(Array.from(new Uint32Array(reads[4]), (v) => (v > 0 ? 1 : 0))).toEqual(Array.from(ref.kept))
    const a = new Uint32Array(reads[5])
    let maxRows = 0
    for (let e = 0; e < E; e++) maxRows = Math.max(maxRows, ref.plan.offsets[e + 1] - ref.plan.offsets[e])
    expect([a[6], a[7], a[1]]).toEqual([rows, maxRows, Math.ceil(maxRows / GEMM_BM)])
    if (policy.capacityFactor !== undefined) expect(ref.plan.counts.reduce((s, c) => s + c, 0)).toBeLessThan(T * k) // the case drops pairs
  })

  const expertCases = [
    { kernel: 'gemv', dtype: 'f32', T: 13, sg: true },
    { kernel: 'gemv', dtype: 'f32', T: 4, sg: false },
    { kernel: 'gemv', dtype: 'f16', T: 11, sg: true },
    // groups of ~10 rows: blocks of 8 loop over the group (second block partly empty)
    { kernel: 'gemv', dtype: 'f16', T: 40, sg: true },
    // workgroup-memory reductions, groups of up to 5 rows in blocks of 4
    { kernel: 'gemv', dtype: 'f32', T: 13, sg: false },
    { kernel: 'gemm', dtype: 'f32', T: 150, sg: true },
    { kernel: 'gemm', dtype: 'f16', T: 150, sg: true },
  ] as const

  it.each(expertCases)('grouped SwiGLU experts + combine: $kernel $dtype T=$T subgroups=$sg (dynamic and static plans)', async ({ kernel, dtype, T, sg }) => {
    const l = new WebGpuMoeLayer(ctx, { weightsDtype: dtype, subgroups: sg })
    const x = randomHidden(T, shape.hidden, T)
    const logits = gateMatmul(x, weights.router, T, shape.hidden, shape.experts)
    const routing = softmaxTopK({ tokens: T, experts: shape.experts, logits }, shape.topK, true)
    const ref32 = dtype === 'f16' ? roundWeights(weights) : weights
    for (const policy of [{}, { mode: 'static', capacityFactor: 1.25 }, { capacityFactor: 1.0 }] as LayerPolicy[]) {
      const { plan } = referenceDispatch(routing, resolvePolicy(policy, T, shape.topK, shape.experts))
      const gpu = await l.experts(x, plan, weights, kernel)
      expect(gpu.expertKernel).toBe(kernel)
      expectClose(gpu.output, expertsForward(x, plan, ref32))
      if (dtype === 'f16') expect(relativeL2(gpu.output, expertsForward(x, plan, weights))).toBeLessThan(5e-3)
    }
  })

  it.each([
    ['dynamic', {}],
    ['capacity γ=1.0', { capacityFactor: 1.0 }],
    ['capacity γ=1.5', { capacityFactor: 1.5 }],
    ['static γ=1.0', { mode: 'static', capacityFactor: 1.0 }],
  ] as [string, LayerPolicy][])('fused forward on the device matches the CPU layer: %s (GEMV and GEMM)', async (_n, policy) => {
    const T = 12
    const x = randomHidden(T, shape.hidden, 5)
    const { cpuForward } = await import('../webgpu-backend.js')
    const cpu = cpuForward(x, weights, { policy, readRouting: true })
    for (const expertKernel of ['gemv', 'gemm'] as const) {
      const gpu = await layer.forward(x, weights, { policy, readRouting: true, expertKernel })
      expect(Array.from(gpu.routing!.expertIds)).toEqual(Array.from(cpu.routing!.expertIds))
      expect(Array.from(gpu.routing!.kept)).toEqual(Array.from(cpu.routing!.kept))
      expect(Array.from(gpu.counts)).toEqual(Array.from(cpu.counts))
      expect([gpu.rows, gpu.paddingRows, gpu.droppedPairs]).toEqual([cpu.rows, cpu.paddingRows, cpu.droppedPairs])
      expectClose(gpu.output, cpu.output)
      expect(Object.keys(gpu.kernels ?? {})).toContain('combine')
    }
  })
})
