/**
 * Every kernel against the CPU reference on seeded inputs (lavapipe in CI, any adapter here).
 * Tolerances: f32 max |gpu − cpu| ≤ 1e-4 · max|cpu|; f16 weights: the same bound against the
 * CPU on f16-rounded weights, and relative L2 ≤ 5e-3 against the unrounded f32 weights.
 * Top-k and the dispatch kernels must give exactly the CPU's pairs and rows; the offsets kernel
 * exactly the host's offsets, non-empty expert list and slot table (`withActiveList`).
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { softmaxTopK, type LayerWeights, type ModelShape } from '@moe-route/core'
import { expertsForward, gateMatmul, relativeL2 } from '@moe-route/backend-cpu'
import { randomHidden, randomLayerWeights } from '@moe-route/workloads'
import { acquireDevice } from '../gpu/device.js'
import { GpuContext } from '../gpu/context.js'
import { WebGpuMoeLayer, withActiveList } from '../layer.js'
import { hostPlan, type PlanPolicy } from '../testing/plans.js'
import { roundToF16 } from '../f16.js'
import { webgpuAdapterForTests } from '../testing/gpu-env.js'
import { DEFAULT_MULTIROW_PLANS, H200_MULTIROW_PLANS, type MultiRowPlan } from './expert-ffn/expert-ffn.program.js'
import { offsetsProgram } from './dispatch/dispatch.program.js'

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

  // The decode kernels launch one workgroup row per list slot and trust every slot past the
  // list to read −1. The offsets buffer comes from the pool with stale words: a live expert
  // whose own id lies past the list (experts 7, 10, 11 here: 5 live) must not leave its slot
  // stale (it did: OLMoE T = 32 on an H100 ran decode workgroups on garbage expert ids).
  it('offsets kernel: row offsets, non-empty expert list (−1 in every slot past it, over stale words) and slot table equal the host', async () => {
    const E = 12
    const cases: { counts: number[]; isStatic: boolean; capacity: number }[] = [
      { counts: [2, 0, 0, 1, 0, 0, 0, 5, 0, 0, 3, 1], isStatic: false, capacity: 0 },
      { counts: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4], isStatic: false, capacity: 0 },
      { counts: [1, 0, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0], isStatic: true, capacity: 3 },
    ]
    for (const c of cases) {
      const sizes = c.counts.map((n) => (c.isStatic ? c.capacity : n))
      const hostOffsets = new Int32Array(E + 1)
      sizes.forEach((n, e) => (hostOffsets[e + 1] = hostOffsets[e] + n))
      const counts = ctx.upload(Uint32Array.from(c.counts), 'counts')
      const offsets = ctx.storage((3 * E + 1) * 4, 'offsets')
      const args = ctx.storage(32, 'gemm-args')
      ctx.device.queue.writeBuffer(offsets, 0, new Int32Array(3 * E + 1).fill(0x5a5a5a5a))
      const rec = ctx.recorder('offsets-test')
      rec.run(offsetsProgram(), { experts: E, isStatic: c.isStatic, capacity: c.capacity, colsGateUp: 96, colsDown: 64, bm: 4, bn: 32 }, [counts, offsets, args])
      rec.read(offsets, (3 * E + 1) * 4)
      rec.read(args, 32)
      rec.releaseAfterSubmit(counts, offsets, args)
      const { reads } = await rec.submit()
      expect(Array.from(new Int32Array(reads[0])), JSON.stringify(c)).toEqual(Array.from(withActiveList(hostOffsets, E)))
      const maxRows = Math.max(...sizes)
      expect(Array.from(new Uint32Array(reads[1]))).toEqual([3, Math.ceil(maxRows / 4), E, 2, Math.ceil(maxRows / 4), E, hostOffsets[E], maxRows])
    }
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

  async function checkExperts(l: WebGpuMoeLayer, kernel: 'gemv' | 'gemm', dtype: 'f32' | 'f16', T: number, expectKernel?: string): Promise<void> {
    const x = randomHidden(T, shape.hidden, T)
    const logits = gateMatmul(x, weights.router, T, shape.hidden, shape.experts)
    const routing = softmaxTopK({ tokens: T, experts: shape.experts, logits }, shape.topK, true)
    const ref32 = dtype === 'f16' ? roundWeights(weights) : weights
    for (const policy of [{}, { mode: 'static', capacityFactor: 1.25 }, { capacityFactor: 1.0 }] as PlanPolicy[]) {
      const plan = hostPlan(routing, policy)
      const gpu = await l.experts(x, plan, weights, kernel)
      expect(gpu.expertKernel).toBe(kernel)
      if (expectKernel && gpu.kernels) expect(Object.keys(gpu.kernels ?? {}).some((k) => k.includes(expectKernel)), JSON.stringify(gpu.kernels)).toBe(true)
      expectClose(gpu.output, expertsForward(x, plan, ref32))
      if (dtype === 'f16') expect(relativeL2(gpu.output, expertsForward(x, plan, weights))).toBeLessThan(5e-3)
    }
  }

  it.each(expertCases)('grouped SwiGLU experts + combine: $kernel $dtype T=$T subgroups=$sg (dynamic and static plans)', async ({ kernel, dtype, T, sg }) => {
    // multi-row off: the single-row GEMV kernels at every group size (lavapipe's default anyway)
    await checkExperts(new WebGpuMoeLayer(ctx, { weightsDtype: dtype, subgroups: sg, multiRowPlans: 'off' }), kernel, dtype, T, kernel === 'gemv' ? 'gemv' : undefined)
  })

  // The multi-row decode kernels: the shipped plans (groups of ~3 rows: up to two of its
  // layouts), and plans small enough to exercise every path at this shape (H 64 = 8 chunks,
  // I 96 = 12): groups larger than a block (loops re-reading the weights), K tiles that do not
  // divide K (gate+up 3 chunks of 8, down 8 of 12), rows past the group skipped in blocks of 4,
  // several reduction passes, nr not dividing N; the down kernel with two weight rows per
  // invocation (wr 2: rows rl and rl + 5); gate+up with each tile's weights loaded one tile ahead
  // (pf 2: the prefetch past the last tile skipped) and fma chains (fm), down with them loaded before the staging
  // (pf 1). llvmpipe compiles each multi-row kernel for 20-160 s on a loaded 2-core machine with
  // a cold shader cache, hence the longer timeout.
  const smallPlans: readonly MultiRowPlan[] = [
    { maxRows: 64, gateup: { mt: 8, nr: 5, ks: 3, cpt: 1, pf: 2, fm: true }, down: { mt: 4, nr: 10, ks: 2, cpt: 4, wr: 2, pf: 1 } },
  ]
  const multiRowCases = [
    { plans: 'default', dtype: 'f16', T: 11, sg: true },
    { plans: 'small', dtype: 'f32', T: 40, sg: false },
  ] as const
  it.each(multiRowCases)('multi-row decode experts + combine: $plans plans $dtype T=$T subgroups=$sg (dynamic and static plans)', async ({ plans, dtype, T, sg }) => {
    const multiRowPlans = plans === 'small' ? smallPlans : DEFAULT_MULTIROW_PLANS
    await checkExperts(new WebGpuMoeLayer(ctx, { weightsDtype: dtype, subgroups: sg, multiRowPlans }), 'gemv', dtype, T, 'multirow')
  }, 600_000)

  it('auto: the decode kernels up to gemvMaxRows and wherever the multi-row table covers the group, else the GEMM', () => {
    const covered = new WebGpuMoeLayer(ctx, { weightsDtype: 'f16', multiRowPlans: DEFAULT_MULTIROW_PLANS })
    for (const rows of [1, 64, 65, 4096]) expect(covered.autoExpertKernel(rows), `rows ${rows}`).toBe('gemv')
    // a table that stops at 32 rows: single-row decode kernels up to 64, the GEMM beyond
    const upTo32 = new WebGpuMoeLayer(ctx, { weightsDtype: 'f16', multiRowPlans: H200_MULTIROW_PLANS })
    expect(upTo32.autoExpertKernel(64)).toBe('gemv')
    expect(upTo32.autoExpertKernel(65)).toBe('gemm')
    const off = new WebGpuMoeLayer(ctx, { weightsDtype: 'f16', multiRowPlans: 'off', gemvMaxRows: 8 })
    expect(off.autoExpertKernel(8)).toBe('gemv')
    expect(off.autoExpertKernel(9)).toBe('gemm')
  })
})
