/**
 * Expert Buffering on one GPU (SPEC B.4, "Towards MoE Deployment" Fig. 13): GPU memory against
 * decode latency as the number of expert slots shrinks, measured through WebGPU.
 *
 * For each slot count N it allocates N slot buffers of one expert each (gate|up|down, f16 bytes,
 * `webgpuTarget` from @moe-route/policy-expert-buffer), replays decode steps whose active experts
 * are drawn from Mixtral-8x7B's recorded layer-0 expert popularity (c4, top-2 per token), makes
 * them resident with the LIFO store (misses upload from host memory with queue.writeBuffer or
 * mapped staging buffers), then runs a simple memory-bound compute per active expert (a kernel
 * that reads every word of the expert's slot, like a decode GEMV does) and waits for the queue.
 * It prints one JSON document: shape, adapter, and per slot count the resident GPU memory,
 * hits/misses, upload time and bandwidth, and step latency (mean, p50, p95).
 *
 * Usage (GPU host):  ../shared/gpu/prepare.sh bench/expert-buffer.bench.ts
 *                    source .gpu/env.sh && node .gpu/expert-buffer.bench.mjs --out out/expert-buffer
 * Smoke on lavapipe: npx esbuild bench/expert-buffer.bench.ts --bundle --platform=node --format=esm \
 *                      --conditions=@moe-route/source --external:webgpu --outfile=/tmp/eb.mjs
 *                    node /tmp/eb.mjs --tiny
 * Flags: --tiny | --shape mixtral|tiny, --slots 8,6,4,3,2,1, --steps N (decode steps, default 64),
 *   --tokens T (tokens per step, default 1), --upload write-buffer|staging, --seed S, --out DIR.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { mulberry32 } from '@moe-route/core'
import { ExpertBufferStore, keepAlive, syntheticWeightSource, webgpuTarget, type WebGpuTarget } from '@moe-route/policy-expert-buffer'
import { acquireDevice } from '@moe-route/backend-webgpu'

const argv = process.argv.slice(2)
const opt = (name: string, fallback: string): string => {
  const i = argv.indexOf(`--${name}`)
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1]! : fallback
}
const tiny = argv.includes('--tiny') || opt('shape', 'mixtral') === 'tiny'
const shape = tiny ? { name: 'tiny', experts: 8, topK: 2, hidden: 64, intermediate: 128 } : { name: 'mixtral-8x7b', experts: 8, topK: 2, hidden: 4096, intermediate: 14336 }
const slotsList = opt('slots', '8,6,4,3,2,1').split(',').map(Number)
const steps = Number(opt('steps', tiny ? '32' : '64'))
const tokens = Number(opt('tokens', '1'))
const upload = opt('upload', 'write-buffer') as 'write-buffer' | 'staging'
const seed = Number(opt('seed', '42'))
const out = opt('out', '')

// Mixtral-8x7B-v0.1 layer 0 on c4, top-2 pairs per expert (data/routing/expert-counts.json, via SPEC D).
const POPULARITY = [56947, 49733, 50426, 49453, 52127, 57956, 42632, 58518]

function decodeTrace(): number[][] {
  const rand = mulberry32(seed)
  const draw = (exclude: Set<number>) => {
    let total = 0
    POPULARITY.forEach((w, e) => !exclude.has(e) && (total += w))
    let u = rand() * total
    for (let e = 0; e < POPULARITY.length; e++) {
      if (exclude.has(e)) continue
      u -= POPULARITY[e]!
      if (u < 0) return e
    }
    return POPULARITY.length - 1
  }
  return Array.from({ length: steps + 4 }, () => {
    const active = new Set<number>()
    for (let t = 0; t < tokens; t++) {
      const chosen = new Set<number>()
      while (chosen.size < shape.topK) chosen.add(draw(chosen))
      chosen.forEach((e) => active.add(e))
    }
    return [...active].sort((a, b) => a - b)
  })
}

const WG = 256
const PER = 64
const shader = /* wgsl */ `
@group(0) @binding(0) var<storage, read> w: array<u32>;
@group(0) @binding(1) var<storage, read_write> acc: array<u32>;
@group(0) @binding(2) var<uniform> n: vec4<u32>;
@compute @workgroup_size(${WG})
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
  let t = gid.x + gid.y * nwg.x * ${WG}u;
  var s = 0u;
  for (var i = 0u; i < ${PER}u; i++) {
    let j = t * ${PER}u + i;
    if (j < n.x) { s = s ^ w[j]; }
  }
  acc[t] = s;
}`

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b)
  return s[Math.min(s.length - 1, Math.floor(p * s.length))]!
}

async function main(): Promise<void> {
  const gpu = await acquireDevice({ powerPreference: 'high-performance' })
  const { device } = gpu
  const weights = syntheticWeightSource({ experts: shape.experts, hidden: shape.hidden, intermediate: shape.intermediate, dtype: 'f16', seed })
  const expertBytes = weights.layout.bytes
  const t0 = performance.now()
  for (let e = 0; e < shape.experts; e++) await weights.read(e) // host copies made before timing
  const hostPrepMs = performance.now() - t0
  const words = expertBytes / 4
  const threads = Math.ceil(words / PER)
  const groups = Math.ceil(threads / WG)
  const gx = Math.min(groups, 65535)
  const gy = Math.ceil(groups / gx)
  const module = device.createShaderModule({ label: 'expert-read', code: shader })
  const pipeline = device.createComputePipeline({ label: 'expert-read', layout: 'auto', compute: { module, entryPoint: 'main' } })
  const acc = device.createBuffer({ label: 'expert-read:acc', size: gx * gy * WG * 4, usage: 0x80 })
  const params = device.createBuffer({ label: 'expert-read:n', size: 16, usage: 0x40 | 0x08 })
  device.queue.writeBuffer(params, 0, new Uint32Array([words, 0, 0, 0]))
  const trace = decodeTrace()
  const results: unknown[] = []
  for (const slots of slotsList) {
    let target: WebGpuTarget | undefined
    const store = new ExpertBufferStore({
      experts: shape.experts,
      slots,
      weights,
      eviction: 'lifo',
      bypassLargeBatches: false,
      awaitUploads: true,
      target: (_d, s, bytes) => (target = webgpuTarget(device, { slots: s, slotBytes: bytes, uploadMode: upload, label: `bench-slots${slots}` })),
    })
    const bindGroups = new Map<GPUBuffer, GPUBindGroup>()
    const bindFor = (buffer: GPUBuffer) => {
      let bg = bindGroups.get(buffer)
      if (!bg) {
        bg = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer } }, { binding: 1, resource: { buffer: acc } }, { binding: 2, resource: { buffer: params } }] })
        bindGroups.set(buffer, bg)
      }
      return bg
    }
    const stepMs: number[] = []
    const computeMs: number[] = []
    let hits = 0
    let misses = 0
    let uploadMs = 0
    let bytesUploaded = 0
    for (const [i, active] of trace.entries()) {
      const s0 = performance.now()
      let c = 0
      const tel = await store.execute({ batchId: i, active, counts: new Int32Array(shape.experts) }, async (_e, binding) => {
        const c0 = performance.now()
        const enc = device.createCommandEncoder({ label: 'expert-read' })
        const pass = enc.beginComputePass({ label: 'expert-read' })
        pass.setPipeline(pipeline)
        pass.setBindGroup(0, bindFor(binding.buffer!))
        pass.dispatchWorkgroups(gx, gy)
        pass.end()
        device.queue.submit([enc.finish()])
        await keepAlive(device.queue.onSubmittedWorkDone())
        c += performance.now() - c0
      })
      if (i < 4) continue // warm-up steps: cold cache and pipeline compilation
      stepMs.push(performance.now() - s0)
      computeMs.push(c)
      hits += tel.hits
      misses += tel.misses
      uploadMs += tel.uploadMs
      bytesUploaded += tel.bytesUploaded
    }
    const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length
    results.push({
      slots,
      residentBytes: slots * expertBytes,
      residentGiB: +((slots * expertBytes) / 2 ** 30).toFixed(3),
      staticMemorySaved: +(1 - slots / shape.experts).toFixed(3),
      hits,
      misses,
      missRate: +(misses / Math.max(1, hits + misses)).toFixed(4),
      stepMs: { mean: +mean(stepMs).toFixed(3), p50: +pct(stepMs, 0.5).toFixed(3), p95: +pct(stepMs, 0.95).toFixed(3) },
      computeMsMean: +mean(computeMs).toFixed(3),
      uploadMsTotal: +uploadMs.toFixed(2),
      uploadGBps: uploadMs > 0 && bytesUploaded > 0 ? +(bytesUploaded / 1e9 / (uploadMs / 1e3)).toFixed(2) : null,
      bytesUploaded,
    })
    await store.dispose()
    void target
  }
  const report = {
    bench: 'expert-buffer',
    shape: { ...shape, dtype: 'f16', expertBytes },
    adapter: gpu.adapterName,
    upload,
    steps,
    tokensPerStep: tokens,
    hostPrepMs: Math.round(hostPrepMs),
    note: 'LIFO store, no bypass; per step: load misses (awaited), then one read-every-word kernel per active expert (awaited)',
    results,
  }
  const json = JSON.stringify(report, null, 2)
  console.log(json)
  if (out) {
    mkdirSync(out, { recursive: true })
    writeFileSync(join(out, 'expert-buffer.json'), json + '\n')
  }
  acc.destroy()
  params.destroy()
  gpu.device.destroy()
}

await main()
