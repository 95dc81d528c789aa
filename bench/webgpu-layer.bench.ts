/**
 * The WebGPU MoE layer at real shapes, one command on a GPU host (see bench/README.md):
 *   Mixtral-8x7B (H 4096, I 14336, E 8, k 2) and OLMoE (H 2048, I 1024, E 64, k 8),
 *   T ∈ {1, 8, 32, 128, 512, 2048, 4096}; f16 weights (packed two per u32) generated on the GPU
 *   from normal(0, 0.02); x ~ normal(0, 1).
 * Per shape and T: the layer's device pipeline — the same code path as a configured engine:
 * gate → softmax-top-k router → capacity-drop (or none) → exact-size / static grouping →
 * SwiGLU experts → combine → telemetry, every stage lowered — with no drop, capacity drop at
 * γ 1.0 and 1.5, and static gating (padded to C = ceil(k·T/E)), timed as back-to-back
 * submissions (`pipeline.submit`, like CUDA-event timing of back-to-back launches), plus the
 * roofline: bytes of the active experts' weights ÷ the measured read bandwidth.
 * Also a parity check of the GPU output against the CPU reference at the real shape.
 *
 * Usage: node webgpu-layer.bench.mjs [--out dir] [--iters n] [--quick] [--tiny] [--tokens 1,8,32]
 *   [--policies dynamic,dynamic/int8] [--indirect-gemm-grid] [--gemv-max-rows 64] [--no-parity | --parity-tokens 3,16,64|label:T,... [--parity-only]] [--robustness off]
 *   [--multirow-sweep [--multirow-max-t 128] [--mr-mt 2,4,8,16,32] [--mr-layouts nr:ks:cpt[:wr[:pf[:fm]]],...]] [--mr-plans plans.json] [--shapes mixtral-8x7b,olmoe-1b-7b]
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { naiveTokenLoop, relativeL2 } from '@moe-route/backend-cpu'
import { randomHidden } from '@moe-route/workloads'
import { softmaxTopK, type LayerWeights, type ModelShape } from '@moe-route/core'
import {
  GpuContext,
  ProgramCache,
  WebGpuMoeLayer,
  acquireDevice,
  generateLayerWeights,
  multiRowLayoutLabel,
  readExpertWeights,
  readRouterWeight,
  quantizeDeviceWeights,
  type DeviceInt8Weights,
  type DeviceLayerWeights,
  type MultiRowLayout,
  type MultiRowPlan,
} from '@moe-route/backend-webgpu'
import { median, readBandwidth, timeBackToBack } from './lib/gpu-timing.js'
import { benchPipeline, deviceBatch, type BenchPolicy } from './lib/pipeline.js'

const args = process.argv.slice(2)
const flag = (name: string) => args.includes(name)
const opt = (name: string, def: string) => {
  const i = args.indexOf(name)
  return i >= 0 && args[i + 1] ? args[i + 1] : def
}
const outDir = opt('--out', 'bench/results')
const iters = Number(opt('--iters', flag('--tiny') ? '2' : '20'))
const tiny = flag('--tiny')

const SHAPES: (ModelShape & { label: string })[] = tiny
  ? [{ label: 'tiny', experts: 8, topK: 2, hidden: 64, intermediate: 128, normalizeTopK: true }]
  : [
      { label: 'mixtral-8x7b', experts: 8, topK: 2, hidden: 4096, intermediate: 14336, normalizeTopK: true },
      { label: 'olmoe-1b-7b', experts: 64, topK: 8, hidden: 2048, intermediate: 1024, normalizeTopK: false },
    ].filter((s) => !opt('--shapes', '') || opt('--shapes', '').split(',').includes(s.label))
const TOKENS = opt('--tokens', '')
  ? opt('--tokens', '').split(',').map(Number)
  : tiny
    ? [1, 8, 32]
    : flag('--quick')
      ? [1, 32, 512]
      : [1, 8, 32, 128, 512, 2048, 4096]
const POLICIES: { name: string; policy?: BenchPolicy; expertKernel?: 'gemv' | 'gemm'; only?: number[]; int8?: boolean; singleRow?: boolean }[] = [
  { name: 'dynamic' },
  // the single-row GEMV kernels where the multi-row kernels now run (before/after, same command)
  { name: 'dynamic/single-row', singleRow: true, only: [1, 8, 32, 128] },
  { name: 'dynamic/gemv', expertKernel: 'gemv', only: [32, 128, 512] },
  { name: 'dynamic/gemm', expertKernel: 'gemm', only: [32, 128, 512] },
  { name: 'drop γ1.0', policy: { capacityFactor: 1.0 } },
  { name: 'drop γ1.5', policy: { capacityFactor: 1.5 } },
  { name: 'static γ1.0', policy: { mode: 'static', capacityFactor: 1.0 } },
  // W8A8: int8 weights per output channel (quantized on the GPU from the same f16 weights),
  // activations per row; subgroup-matrix tensor cores where the adapter has them, else dot4
  { name: 'dynamic/int8', int8: true },
  { name: 'drop γ1.0/int8', policy: { capacityFactor: 1.0 }, int8: true },
]

// allow_unsafe_apis: Dawn exposes chromium-experimental-subgroup-matrix (the int8 tensor-core
// path) only with it; timestamp_quantization off: kernel times to the ns instead of 65.5 µs steps.
// --robustness off: Dawn's disable_robustness toggle (no bounds clamping of buffer accesses)
const robustOff = opt('--robustness', 'on') === 'off'
// --indirect-gemm-grid: the layers' expert GEMMs over the indirect grid (the default is a direct grid)
const gridOpt = flag('--indirect-gemm-grid') ? { indirectGemmGrid: true } : {}
// --gemv-max-rows N: the f16 layer's decode kernels (single- or multi-row) up to N rows per expert, the GEMM beyond (default 64)
const gemvOpt = opt('--gemv-max-rows', '') ? { gemvMaxRows: Number(opt('--gemv-max-rows', '')) } : {}
const acquired = await acquireDevice({ powerPreference: 'high-performance', dawnFlags: [`enable-dawn-features=allow_unsafe_apis${robustOff ? ',disable_robustness' : ''}`, 'disable-dawn-features=timestamp_quantization'] })
const ctx = new GpuContext(acquired)
// A second context on the same device with timestamp queries: GPU time of each kernel.
const profCtx = acquired.features.timestampQuery ? new GpuContext(acquired, { profile: true }) : null
const device = acquired.device
const profLayers = new Map<string, WebGpuMoeLayer>()
console.log(JSON.stringify({ adapter: acquired.adapterName, info: acquired.adapterInfo, features: acquired.features, maxStorageBuffersPerShaderStage: device.limits.maxStorageBuffersPerShaderStage }))

const pipelines = new Map<string, Promise<Awaited<ReturnType<typeof benchPipeline>>>>()
/** The device pipeline of a (layer, weights, policy, kernel) combination, built once. */
function pipelineOf(layer: WebGpuMoeLayer, dw: DeviceLayerWeights | DeviceInt8Weights, model: ModelShape, policy: BenchPolicy | undefined, expertKernel?: 'gemv' | 'gemm') {
  const key = `${pipelineIds.get(layer) ?? pipelineIds.set(layer, pipelineIds.size).get(layer)}|${pipelineIds.get(dw) ?? pipelineIds.set(dw, pipelineIds.size).get(dw)}|${JSON.stringify(policy ?? {})}|${expertKernel ?? ''}`
  let p = pipelines.get(key)
  if (!p) pipelines.set(key, (p = benchPipeline(layer, dw, model, policy, expertKernel)))
  return p
}
const pipelineIds = new Map<object, number>()

/**
 * ms per call of the layer's pipeline, `n` calls submitted back to back without waiting (one
 * wait at the end, like CUDA-event timing of back-to-back launches): wall clock, host encoding
 * included.
 */
/**
 * ms per call back to back (see timeBackToBack): the median of 3 repeats of n calls, each with
 * one wait at the end (as the peers report the median of their repeats; a single repeat now
 * and then took 20–40 ms longer in all on the H100, a stall the GPU times do not show), with
 * every repeat, and the buffers created and pipelines compiled during the timed calls
 * (steady state: 0).
 */
async function timeForward(layer: WebGpuMoeLayer, xb: GPUBuffer, T: number, model: ModelShape, dw: DeviceLayerWeights | DeviceInt8Weights, policy: BenchPolicy | undefined, n: number, expertKernel?: 'gemv' | 'gemm', warmupMs = 150): Promise<{ ms: number; msRepeats: number[]; buffersCreatedTimed: number; pipelinesCompiledTimed: number }> {
  const pipeline = await pipelineOf(layer, dw, model, policy, expertKernel)
  const batch = deviceBatch(layer, xb, T, model.hidden)
  let created = 0
  let compiled = 0
  const msRepeats = [
    await timeBackToBack(device, () => void pipeline.submit(batch), n, warmupMs, () => {
      created = ctx.pool.created
      compiled = ProgramCache.size(device)
    }),
  ]
  for (let r = 1; r < 3; r++) msRepeats.push(await timeBackToBack(device, () => void pipeline.submit(batch), n, 0))
  return { ms: median(msRepeats), msRepeats, buffersCreatedTimed: ctx.pool.created - created, pipelinesCompiledTimed: ProgramCache.size(device) - compiled }
}

// Diagnostic: the decode gate+up kernel alone (Mixtral shape, one token, one expert) on this
// device and on a device without the unsafe-API flags and optional features.
if (!tiny && flag('--diag')) {
  const { probeLayerGemv } = await import('./gpu-probe.js')
  const { gemvGateUpWgsl } = await import('../packages/backends/webgpu/src/kernels/expert-ffn/expert-gemv.wgsl.js')
  await probeLayerGemv(gemvGateUpWgsl as never, 4, 256, device, 'bench device')
  const plain = await acquireDevice({ powerPreference: 'high-performance', timestamps: false })
  await probeLayerGemv(gemvGateUpWgsl as never, 4, 256, plain.device, 'plain device')
}

const bw = await readBandwidth(device, tiny ? 64 * 2 ** 20 : 2 ** 30, tiny ? 4 : 30)
console.log(JSON.stringify({ readBandwidthTBs: bw / 1e12 }))
const rows: Record<string, unknown>[] = []
const parity: Record<string, unknown>[] = []
for (const shape of SHAPES) {
  const { label, ...modelShape } = shape
  // --mr-plans file.json: the multi-row plan table to run (bench/multirow-plans.mjs writes one from a sweep)
  // (JSON has no Infinity: a row whose maxRows is null or absent covers every size)
  const mrPlans: MultiRowPlan[] | undefined = opt('--mr-plans', '')
    ? (JSON.parse(readFileSync(opt('--mr-plans', ''), 'utf8')) as MultiRowPlan[]).map((p) => ({ ...p, maxRows: p.maxRows ?? Infinity }))
    : undefined
  const layer = new WebGpuMoeLayer(ctx, { ...gridOpt, ...gemvOpt, weightsDtype: 'f16', ...(mrPlans ? { multiRowPlans: mrPlans } : {}) })
  const t0 = performance.now()
  const dw = await generateLayerWeights(ctx, modelShape, { seed: 1, std: 0.02, dtype: 'f16' })
  console.log(JSON.stringify({ shape: label, weightsGeneratedMs: performance.now() - t0 }))
  const tq = performance.now()
  const w8 = await quantizeDeviceWeights(ctx, dw)
  const layer8 = new WebGpuMoeLayer(ctx, { ...gridOpt, int8Kernel: 'auto' })
  const layerSingle = new WebGpuMoeLayer(ctx, { weightsDtype: 'f16', multiRowPlans: 'off' })
  console.log(JSON.stringify({ shape: label, int8QuantizeMs: performance.now() - tq, int8Kernel: layer8.int8Gemm() }))
  const bytesPerExpert8 = w8.expertBytes
  const bytesPerExpert = 3 * shape.hidden * shape.intermediate * 2
  // Parity at the real shape: 3 tokens through the fused layer vs the CPU reference on the
  // same (f16-rounded) weights, read back for the active experts only.
  // --parity-tokens 16,64 (or per shape, mixtral-8x7b:16,olmoe-1b-7b:128): the same check at
  // batch sizes where the multi-row kernels run
  const parityTokens = opt('--parity-tokens', '3').split(',').map((e) => e.split(':')).filter((e) => e.length === 1 || e[0] === label).map((e) => Number(e[e.length - 1]))
  for (const T of flag('--no-parity') ? [] : parityTokens) {
    const x = randomHidden(T, shape.hidden, 99)
    const r = await (await pipelineOf(layer, dw, modelShape, undefined)).forward({ id: 0, tokens: T, hidden: x }, { detail: 'full', output: 'host' })
    const router = await readRouterWeight(ctx, dw)
    const active = [...new Set(Array.from(r.detail!.original.expertIds))]
    const experts: LayerWeights['experts'][number][] = []
    for (let e = 0; e < shape.experts; e++) experts.push(active.includes(e) ? await readExpertWeights(ctx, dw, e) : { gate: new Float32Array(0), up: new Float32Array(0), down: new Float32Array(0) })
    const w: LayerWeights = { shape: modelShape, router, experts }
    const logits = new Float32Array(T * shape.experts)
    for (let t = 0; t < T; t++) for (let e = 0; e < shape.experts; e++) {
      let acc = 0
      for (let h = 0; h < shape.hidden; h++) acc += x[t * shape.hidden + h] * router[e * shape.hidden + h]
      logits[t * shape.experts + e] = acc
    }
    const routing = softmaxTopK({ tokens: T, experts: shape.experts, logits }, shape.topK, shape.normalizeTopK)
    const pairs: { token: number; expert: number; weight: number }[] = []
    for (let t = 0; t < T; t++) for (let j = 0; j < shape.topK; j++) pairs.push({ token: t, expert: routing.expertIds[t * shape.topK + j], weight: routing.weights[t * shape.topK + j] })
    const ref = naiveTokenLoop(x, T, pairs, w)
    const samePairs = Array.from(routing.expertIds).join() === Array.from(r.detail!.original.expertIds).join()
    let refNorm = 0
    for (const v of ref) refNorm += v * v
    const rowsHint = Math.max(1, Math.min(T, Math.ceil((T * shape.topK) / shape.experts)))
    const mr = layer.multiRowPlan(rowsHint, { gateup: shape.hidden, down: shape.intermediate })
    const expertKernel = mr ? `multirow ${multiRowLayoutLabel(mr.gateup)} + ${multiRowLayoutLabel(mr.down)}` : T * shape.topK / shape.experts <= 64 ? 'gemv' : 'gemm'
    const p = { shape: label, tokens: T, rowsHint, expertKernel, activeExperts: active.length, samePairs, relativeL2: relativeL2(r.output!, ref), referenceL2Norm: Math.sqrt(refNorm) }
    parity.push(p)
    console.log(JSON.stringify({ parity: p }))
  }
  for (const T of flag('--parity-only') ? [] : TOKENS) {
    const x = randomHidden(T, shape.hidden, T)
    const xb = layer.uploadHidden(x, T, shape.hidden)
    // Active experts of this batch (no drop), for the roofline.
    const probe = await (await pipelineOf(layer, dw, modelShape, undefined)).forward({ id: 0, tokens: T, hidden: x }, { detail: 'telemetry', output: 'host' })
    const active = probe.counts.loadAfter.filter((c) => c > 0).length
    const rooflineMs = ((active * bytesPerExpert) / bw) * 1000
    // --gemv-sweep: decode layouts side by side (weight rows per workgroup; expert slots), dynamic routing
    if (flag('--gemv-sweep') && T <= Number(opt('--gemv-max-t', '32'))) {
      const rowsList = opt('--gemv-rows', '') ? opt('--gemv-rows', '').split(',').map((r) => [Number(r), 'active'] as const) : ([[2, 'active'], [4, 'active'], [4, 'all']] as const)
      for (const [gemvRows, decodeSlots] of rowsList) {
        const l = new WebGpuMoeLayer(ctx, { weightsDtype: 'f16', gemvRows, decodeSlots, expertKernel: 'gemv' })
        const { ms } = await timeForward(l, xb, T, modelShape, dw, undefined, 20)
        console.log(JSON.stringify({ sweep: 'gemv', shape: label, T, gemvRows, decodeSlots, ms, pctRoofline: (100 * rooflineMs) / ms }))
      }
    }
    // --multirow-sweep: multi-row decode layouts side by side (block rows mt × weight rows nr ×
    // K split ks × chunks per tile cpt, the same layout for gate+up and down) against the
    // single-row GEMV kernels, dynamic routing; wall ms back to back and the two kernels' GPU ms
    if (flag('--multirow-sweep') && T >= 1 && T <= Number(opt('--multirow-max-t', '128'))) {
      const layouts = opt('--mr-layouts', '8:16:4,16:8:4,32:4:4,128:2:2,32:8:2:2,16:8:2:2,64:4:2:2,32:8:1:4,64:8:2:4,64:4:2:4').split(',').map((s) => s.split(':').map(Number))
      const rowsHint = Math.max(1, Math.min(T, Math.ceil((T * shape.topK) / shape.experts)))
      const mts = opt('--mr-mt', '2,4,8,16,32').split(',').map(Number).filter((mt) => mt >= Math.min(rowsHint, 32) && mt <= 4 * Math.max(2, rowsHint))
      const variants: { label: string; layout?: MultiRowLayout; plans: MultiRowPlan[] | 'off' }[] = [{ label: 'single-row', plans: 'off' }]
      for (const mt of mts) for (const [nr, ks, cpt, wr = 1, pf = 0, fm = 0] of layouts) {
        const l: MultiRowLayout = { mt, nr, ks, cpt, ...(wr > 1 ? { wr } : {}), ...(pf > 0 ? { pf: pf as 1 | 2 } : {}), ...(fm ? { fm: true } : {}) }
        variants.push({ label: multiRowLayoutLabel(l), layout: l, plans: [{ maxRows: Infinity, gateup: l, down: l }] })
      }
      for (const v of variants) {
        try {
          const l = new WebGpuMoeLayer(ctx, { weightsDtype: 'f16', expertKernel: 'gemv', multiRowPlans: v.plans })
          const { ms } = await timeForward(l, xb, T, modelShape, dw, undefined, 20)
          let kernels: Record<string, number> | undefined
          if (profCtx) {
            const pl = new WebGpuMoeLayer(profCtx, { weightsDtype: 'f16', expertKernel: 'gemv', multiRowPlans: v.plans })
            const pp = await pipelineOf(pl, dw, modelShape, undefined, 'gemv')
            const ks: Record<string, number>[] = []
            for (let i = 0; i < 3; i++) ks.push((await pp.forward({ id: i, tokens: T, hidden: x }, { detail: 'telemetry', output: 'norm' })).kernels ?? {})
            kernels = Object.fromEntries(Object.keys(ks[0]).filter((k) => k.includes('experts')).map((k) => [k, ks.map((r) => r[k]).sort((a, b) => a - b)[1]]))
          }
          console.log(JSON.stringify({ sweep: 'multirow', shape: label, T, rowsHint, variant: v.label, layout: v.layout, ms, kernels, pctRoofline: (100 * rooflineMs) / ms }))
        } catch (err) {
          console.log(JSON.stringify({ sweep: 'multirow', shape: label, T, variant: v.label, error: String(err) }))
        }
      }
    }
    // int8 accuracy at this T: the int8 layer against the f16 layer on the same weights
    const out16 = probe.output!
    const out8 = (await (await pipelineOf(layer8, w8, modelShape, undefined)).forward({ id: 0, tokens: T, hidden: x }, { detail: 'telemetry', output: 'host' })).output!
    const int8VsF16 = relativeL2(out8, out16)
    console.log(JSON.stringify({ shape: label, T, int8VsF16RelativeL2: int8VsF16 }))
    const wanted = opt('--policies', '') ? opt('--policies', '').split(',') : null
    for (const { name, policy, expertKernel, only, int8, singleRow } of POLICIES) {
      if (only && !only.includes(T)) continue
      if (wanted && !wanted.includes(name)) continue
      const L = int8 ? layer8 : singleRow ? layerSingle : layer
      const W = int8 ? w8 : dw
      const n = Math.max(3, Math.min(iters, Math.ceil(2000 / Math.max(1, T))))
      // the first configuration after host work (weights, parity, probes) gets a 1 s warm-up:
      // with 150 ms it measured up to 4× slower on the H200
      const { ms, ...timing } = await timeForward(L, xb, T, modelShape, W, policy, n, expertKernel, name === (wanted?.[0] ?? POLICIES[0].name) ? 1000 : 150)
      // GPU time: the sum of the kernels' timestamp-query times of one profiled forward (median of 3)
      let gpuMs: number | null = null
      let kernels: Record<string, number> | undefined
      let expertKernelUsed: string | undefined
      if (profCtx) {
        const pk = `${!!int8}|${!!singleRow}`
        const pl = profLayers.get(pk) ?? profLayers.set(pk, new WebGpuMoeLayer(profCtx, int8 ? { ...gridOpt, int8Kernel: 'auto' } : { ...gridOpt, ...(singleRow ? {} : gemvOpt), weightsDtype: 'f16', ...(singleRow ? { multiRowPlans: 'off' as const } : mrPlans ? { multiRowPlans: mrPlans } : {}) })).get(pk)!
        const pp = await pipelineOf(pl, W, modelShape, policy, expertKernel)
        const runs: { total: number; kernels: Record<string, number>; kind: string }[] = []
        for (let i = 0; i < 3; i++) {
          const r = await pp.forward({ id: i, tokens: T, hidden: x }, { detail: 'telemetry', output: 'norm' })
          const k = r.kernels ?? {}
          const kind = Object.keys(k).some((n) => n.includes('int8')) ? 'int8' : Object.keys(k).some((n) => n.includes('multirow')) ? 'multirow' : Object.keys(k).some((n) => n.includes('gemv')) ? 'gemv' : 'gemm'
          runs.push({ total: Object.values(k).reduce((a, b) => a + b, 0), kernels: k, kind })
        }
        runs.sort((a, b) => a.total - b.total)
        gpuMs = runs[1].total
        kernels = runs[1].kernels
        expertKernelUsed = runs[1].kind
      }
      // roofline of the bytes this variant reads: f16 weights, or int8 weights + scales
      const roof = int8 ? ((active * bytesPerExpert8) / bw) * 1000 : rooflineMs
      const row = { shape: label, T, policy: name, ms, gpuMs, kernels, expertKernel: expertKernelUsed, activeExperts: active, rooflineMs: roof, rooflineF16Ms: rooflineMs, pctRoofline: (100 * roof) / ms, iters: n, ...timing, ...(int8 ? { int8VsF16RelativeL2: int8VsF16 } : {}) }
      rows.push(row)
      console.log(JSON.stringify(row))
    }
    ctx.pool.release(xb)
  }
  for (const b of [dw.router, dw.gate, dw.up, dw.down]) b.destroy()
  w8.destroy()
}
mkdirSync(outDir, { recursive: true })
const result = { bench: 'webgpu-layer', date: new Date().toISOString(), robustness: !robustOff, adapter: acquired.adapterName, adapterInfo: acquired.adapterInfo, readBandwidthTBs: bw / 1e12, weightsDtype: 'f16', parity, rows }
writeFileSync(join(outDir, `webgpu-layer${robustOff ? '-norobust' : ''}.json`), JSON.stringify(result, null, 2))
console.log('wrote webgpu-layer')
process.exit(0)
