/**
 * The WebGPU MoE layer at real shapes, one command on a GPU host (see bench/README.md):
 *   Mixtral-8x7B (H 4096, I 14336, E 8, k 2) and OLMoE (H 2048, I 1024, E 64, k 8),
 *   T ∈ {1, 8, 32, 128, 512, 2048, 4096}; f16 weights (packed two per u32) generated on the GPU
 *   from normal(0, 0.02); x ~ normal(0, 1).
 * Per shape and T: the fused layer (gate → softmax top-k → group → SwiGLU experts → combine)
 * with no drop, capacity drop at γ 1.0 and 1.5, and static gating (padded to C = ceil(k·T/E)),
 * timed as back-to-back submissions (like CUDA-event timing of back-to-back launches), plus
 * the roofline: bytes of the active experts' weights ÷ the measured read bandwidth.
 * Also a parity check of the GPU output against the CPU reference at the real shape.
 *
 * Usage: node webgpu-layer.bench.mjs [--out dir] [--iters n] [--quick] [--tiny] [--tokens 1,8,32]
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { naiveTokenLoop, randomHidden, relativeL2 } from '@moe-route/backend-cpu'
import { softmaxTopK, type LayerWeights, type ModelShape } from '@moe-route/core'
import {
  GpuContext,
  WebGpuMoeLayer,
  acquireDevice,
  generateLayerWeights,
  readExpertWeights,
  readRouterWeight,
  type DeviceLayerWeights,
  type LayerPolicy,
} from '@moe-route/backend-webgpu'

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
    ]
const TOKENS = opt('--tokens', '')
  ? opt('--tokens', '').split(',').map(Number)
  : tiny
    ? [1, 8, 32]
    : flag('--quick')
      ? [1, 32, 512]
      : [1, 8, 32, 128, 512, 2048, 4096]
const POLICIES: { name: string; policy?: LayerPolicy; expertKernel?: 'gemv' | 'gemm'; only?: number[] }[] = [
  { name: 'dynamic' },
  { name: 'dynamic/gemv', expertKernel: 'gemv', only: [32, 128, 512] },
  { name: 'dynamic/gemm', expertKernel: 'gemm', only: [32, 128, 512] },
  { name: 'drop γ1.0', policy: { capacityFactor: 1.0 } },
  { name: 'drop γ1.5', policy: { capacityFactor: 1.5 } },
  { name: 'static γ1.0', policy: { mode: 'static', capacityFactor: 1.0 } },
]

// allow_unsafe_apis: Dawn exposes chromium-experimental-subgroup-matrix (the int8 tensor-core
// path) only with it; timestamp_quantization off: kernel times to the ns instead of 65.5 µs steps.
const acquired = await acquireDevice({ powerPreference: 'high-performance', dawnFlags: ['enable-dawn-features=allow_unsafe_apis', 'disable-dawn-features=timestamp_quantization'] })
const ctx = new GpuContext(acquired)
// A second context on the same device with timestamp queries: GPU time of each kernel.
const profCtx = acquired.features.timestampQuery ? new GpuContext(acquired, { profile: true }) : null
const device = acquired.device
console.log(JSON.stringify({ adapter: acquired.adapterName, info: acquired.adapterInfo, features: acquired.features }))

/**
 * Read bandwidth: a WGSL kernel that reads a 1 GiB buffer (64 MiB with --tiny) once with
 * 16-byte loads and writes one word per workgroup, timed over back-to-back dispatches.
 * This is the ceiling a decode GEMV can reach (it only reads weights).
 */
async function readBandwidth(): Promise<number> {
  const bytes = tiny ? 64 * 2 ** 20 : 2 ** 30
  const WG = 256
  const PER = 16 // vec4 loads per invocation
  const groups = bytes / 16 / (WG * PER)
  const src = device.createBuffer({ label: 'bw-src', size: bytes, usage: 0x80 /* STORAGE */ })
  const sink = device.createBuffer({ label: 'bw-sink', size: groups * 4 * WG, usage: 0x80 })
  const module = device.createShaderModule({
    label: 'bw-read',
    code: `@group(0) @binding(0) var<storage, read> a: array<vec4<u32>>;
@group(0) @binding(1) var<storage, read_write> o: array<u32>;
@compute @workgroup_size(${WG}) fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) n: vec3<u32>, @builtin(local_invocation_index) l: u32) {
  let g = wid.y * n.x + wid.x;
  var acc = vec4<u32>(0u);
  for (var i = 0u; i < ${PER}u; i = i + 1u) { acc = acc ^ a[(g * ${PER}u + i) * ${WG}u + l]; }
  let v = acc.x ^ acc.y ^ acc.z ^ acc.w;
  if (v == 0x12345678u) { o[g * ${WG}u + l] = v; }
}`,
  })
  const pipeline = device.createComputePipeline({ label: 'bw-read', layout: 'auto', compute: { module, entryPoint: 'main' } })
  const bg = device.createBindGroup({ label: 'bw-read', layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: src } }, { binding: 1, resource: { buffer: sink } }] })
  const gx = Math.min(groups, 32768)
  const gy = Math.ceil(groups / gx)
  const run = async (n: number) => {
    const enc = device.createCommandEncoder({ label: 'bw-read' })
    const pass = enc.beginComputePass()
    pass.setPipeline(pipeline)
    pass.setBindGroup(0, bg)
    for (let i = 0; i < n; i++) pass.dispatchWorkgroups(gx, gy)
    pass.end()
    device.queue.submit([enc.finish()])
    await device.queue.onSubmittedWorkDone()
  }
  await run(3)
  const n = tiny ? 4 : 30
  const t0 = performance.now()
  await run(n)
  const s = (performance.now() - t0) / 1000
  src.destroy()
  sink.destroy()
  return (bytes * n) / s
}

/**
 * ms per call of the fused layer, `n` calls submitted back to back without waiting (one wait
 * at the end, like CUDA-event timing of back-to-back launches): wall clock, host encoding
 * included. `gpuOnly`: the n calls encoded into one command buffer and one submit, so the
 * host cost of encoding is paid before the clock starts (the GPU's own time per call).
 */
async function timeForward(layer: WebGpuMoeLayer, xb: GPUBuffer, T: number, dw: DeviceLayerWeights, policy: LayerPolicy | undefined, n: number, expertKernel?: 'gemv' | 'gemm', gpuOnly = false): Promise<number> {
  const opts = { ...(policy ? { policy } : {}), ...(expertKernel ? { expertKernel } : {}) }
  const once = () => {
    const rec = ctx.recorder('bench forward')
    const f = layer.encodeForward(rec, xb, T, dw, opts)
    rec.submitNoWait()
    f.release()
  }
  // Warm up for at least 150 ms of back-to-back calls: the GPU clocks down while the host
  // works between configurations, and the first calls after that run up to 1.6× slower.
  const w0 = performance.now()
  for (let i = 0; i < 3 || performance.now() - w0 < 150; i++) {
    once()
    if (i % 8 === 7) await device.queue.onSubmittedWorkDone()
  }
  await device.queue.onSubmittedWorkDone()
  if (gpuOnly) {
    const rec = ctx.recorder('bench forward x n')
    const fs = Array.from({ length: n }, () => layer.encodeForward(rec, xb, T, dw, opts))
    const t0 = performance.now()
    rec.submitNoWait()
    await device.queue.onSubmittedWorkDone()
    const ms = (performance.now() - t0) / n
    for (const f of fs) f.release()
    return ms
  }
  const t0 = performance.now()
  for (let i = 0; i < n; i++) once()
  await device.queue.onSubmittedWorkDone()
  return (performance.now() - t0) / n
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

const bw = await readBandwidth()
console.log(JSON.stringify({ readBandwidthTBs: bw / 1e12 }))
const rows: Record<string, unknown>[] = []
const parity: Record<string, unknown>[] = []
for (const shape of SHAPES) {
  const { label, ...modelShape } = shape
  const layer = new WebGpuMoeLayer(ctx, { weightsDtype: 'f16' })
  const t0 = performance.now()
  const dw = await generateLayerWeights(ctx, modelShape, { seed: 1, std: 0.02, dtype: 'f16' })
  console.log(JSON.stringify({ shape: label, weightsGeneratedMs: performance.now() - t0 }))
  const bytesPerExpert = 3 * shape.hidden * shape.intermediate * 2
  // Parity at the real shape: 3 tokens through the fused layer vs the CPU reference on the
  // same (f16-rounded) weights, read back for the active experts only.
  {
    const T = 3
    const x = randomHidden(T, shape.hidden, 99)
    const r = await layer.forward(x, dw, { readRouting: true })
    const router = await readRouterWeight(ctx, dw)
    const active = [...new Set(Array.from(r.routing!.expertIds))]
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
    const samePairs = Array.from(routing.expertIds).join() === Array.from(r.routing!.expertIds).join()
    let refNorm = 0
    for (const v of ref) refNorm += v * v
    const p = { shape: label, tokens: T, samePairs, relativeL2: relativeL2(r.output, ref), referenceL2Norm: Math.sqrt(refNorm) }
    parity.push(p)
    console.log(JSON.stringify({ parity: p }))
  }
  for (const T of TOKENS) {
    const x = randomHidden(T, shape.hidden, T)
    const xb = layer.uploadHidden(x, T, shape.hidden)
    // Active experts of this batch (no drop), for the roofline.
    const probe = await layer.forward(x, dw)
    const active = Array.from(probe.counts).filter((c) => c > 0).length
    const rooflineMs = ((active * bytesPerExpert) / bw) * 1000
    // --gemv-sweep: decode layouts side by side (weight rows per workgroup; expert slots), dynamic routing
    if (flag('--gemv-sweep') && T <= 32) {
      for (const [gemvRows, decodeSlots] of [[2, 'active'], [4, 'active'], [4, 'all']] as const) {
        const l = new WebGpuMoeLayer(ctx, { weightsDtype: 'f16', gemvRows, decodeSlots, expertKernel: 'gemv' })
        const ms = await timeForward(l, xb, T, dw, undefined, 20)
        console.log(JSON.stringify({ sweep: 'gemv', shape: label, T, gemvRows, decodeSlots, ms, pctRoofline: (100 * rooflineMs) / ms }))
      }
    }
    for (const { name, policy, expertKernel, only } of POLICIES) {
      if (only && !only.includes(T)) continue
      const n = Math.max(3, Math.min(iters, Math.ceil(2000 / Math.max(1, T))))
      const ms = await timeForward(layer, xb, T, dw, policy, n, expertKernel)
      const gpuOnlyMs = await timeForward(layer, xb, T, dw, policy, n, expertKernel, true)
      // GPU time: the sum of the kernels' timestamp-query times of one profiled forward (median of 3)
      let gpuMs: number | null = null
      let kernels: Record<string, number> | undefined
      let expertKernelUsed: string | undefined
      if (profCtx) {
        const pl = new WebGpuMoeLayer(profCtx, { weightsDtype: 'f16' })
        const runs: { total: number; kernels: Record<string, number>; kind: string }[] = []
        for (let i = 0; i < 3; i++) {
          const r = await pl.forward(x, dw, { ...(policy ? { policy } : {}), ...(expertKernel ? { expertKernel } : {}) })
          const k = r.kernels ?? {}
          runs.push({ total: Object.values(k).reduce((a, b) => a + b, 0), kernels: k, kind: r.expertKernel })
        }
        runs.sort((a, b) => a.total - b.total)
        gpuMs = runs[1].total
        kernels = runs[1].kernels
        expertKernelUsed = runs[1].kind
      }
      const row = { shape: label, T, policy: name, ms, gpuOnlyMs, gpuMs, kernels, expertKernel: expertKernelUsed, activeExperts: active, rooflineMs, pctRoofline: (100 * rooflineMs) / ms, iters: n }
      rows.push(row)
      console.log(JSON.stringify(row))
    }
    ctx.pool.release(xb)
  }
  for (const b of [dw.router, dw.gate, dw.up, dw.down]) b.destroy()
}
mkdirSync(outDir, { recursive: true })
const result = { bench: 'webgpu-layer', date: new Date().toISOString(), adapter: acquired.adapterName, adapterInfo: acquired.adapterInfo, readBandwidthTBs: bw / 1e12, weightsDtype: 'f16', parity, rows }
writeFileSync(join(outDir, 'webgpu-layer.json'), JSON.stringify(result, null, 2))
console.log(`wrote ${join(outDir, 'webgpu-layer.json')}`)
process.exit(0)
