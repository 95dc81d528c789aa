/**
 * Design probe (issue 15): the host's cost of one back-to-back layer submit while the GPU is
 * idle (each submit finds the queue drained, as at T = 1 where the host is the bottleneck)
 * against while the GPU is busy (a long read kernel submitted first, so every submit queues
 * behind it). Cases: the layer's device pipeline at Mixtral-8x7B / OLMoE-1B-7B shapes and T,
 * and a bare submit of 11 tiny dependent dispatches in one pass. µs per submit, median of 5
 * rounds of 40 submits; each pipeline submit under a new batch id (as in a decode loop).
 *
 * Usage: node submit-host-probe.mjs [--cases olmoe:1,mixtral:1,olmoe:8]   (tiny:1 on a CPU adapter)
 */
import { randomHidden } from '@moe-route/backend-cpu'
import type { ModelShape } from '@moe-route/core'
import { GpuContext, WebGpuMoeLayer, acquireDevice, generateLayerWeights } from '@moe-route/backend-webgpu'
import { median, readGrid, readKernelWgsl, sinkBytes } from './lib/gpu-timing.js'
import { benchPipeline, deviceBatch } from './lib/pipeline.js'

const args = process.argv.slice(2)
const ci = args.indexOf('--cases')
const cases = (ci >= 0 ? args[ci + 1] : 'olmoe:1,mixtral:1,olmoe:8,mixtral:32').split(',').map((c) => c.split(':'))
const acquired = await acquireDevice({ powerPreference: 'high-performance' })
const device = acquired.device
const ctx = new GpuContext(acquired)
console.log(JSON.stringify({ probe: 'submit-host', adapter: acquired.adapterName, device: acquired.adapterInfo?.device }))

// the busy kernel: reads a large buffer several times (milliseconds of GPU work)
const big = Math.min(1 << 30, device.limits.maxStorageBufferBindingSize, device.limits.maxBufferSize) & ~((1 << 20) - 1)
const src = device.createBuffer({ size: big, usage: 0x80 })
const sink = device.createBuffer({ size: sinkBytes(big), usage: 0x80 })
const readPipe = device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code: readKernelWgsl }), entryPoint: 'main' } })
const readBg = device.createBindGroup({ layout: readPipe.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: src } }, { binding: 1, resource: { buffer: sink } }] })
const busy = (reps: number) => {
  const enc = device.createCommandEncoder()
  const pass = enc.beginComputePass()
  pass.setPipeline(readPipe)
  pass.setBindGroup(0, readBg)
  const [gx, gy] = readGrid(big)
  for (let i = 0; i < reps; i++) pass.dispatchWorkgroups(gx, gy)
  pass.end()
  device.queue.submit([enc.finish()])
}

async function hostUs(once: () => void, busyReps: number): Promise<number> {
  const rounds: number[] = []
  for (let r = 0; r < 6; r++) {
    await device.queue.onSubmittedWorkDone()
    if (busyReps > 0) busy(busyReps)
    const t0 = performance.now()
    for (let i = 0; i < 40; i++) once()
    rounds.push(((performance.now() - t0) / 40) * 1000)
    await device.queue.onSubmittedWorkDone()
  }
  return median(rounds.slice(1))
}

// bare: 11 tiny dependent dispatches in one pass
const tiny = device.createComputePipeline({
  layout: 'auto',
  compute: { module: device.createShaderModule({ code: `@group(0) @binding(0) var<storage, read_write> b: array<atomic<u32>>;
@compute @workgroup_size(64) fn main(@builtin(local_invocation_index) l: u32) { if (l == 0u) { atomicAdd(&b[0], 1u); } }` }), entryPoint: 'main' },
})
const tb = device.createBuffer({ size: 256, usage: 0x80 })
const tbg = device.createBindGroup({ layout: tiny.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: tb } }] })
const bare = () => {
  const enc = device.createCommandEncoder()
  const pass = enc.beginComputePass()
  pass.setPipeline(tiny)
  pass.setBindGroup(0, tbg)
  for (let i = 0; i < 11; i++) pass.dispatchWorkgroups(1)
  pass.end()
  device.queue.submit([enc.finish()])
}
// 40 reads of 1 GiB ≈ 14 ms on an H100: longer than 40 submits on the host
console.log(JSON.stringify({ case: 'bare 11 dispatches', idleUs: await hostUs(bare, 0), busyUs: await hostUs(bare, 40) }))

const SHAPES: Record<string, ModelShape> = {
  mixtral: { experts: 8, topK: 2, hidden: 4096, intermediate: 14336, normalizeTopK: true },
  olmoe: { experts: 64, topK: 8, hidden: 2048, intermediate: 1024, normalizeTopK: false },
  tiny: { experts: 8, topK: 2, hidden: 256, intermediate: 512, normalizeTopK: true },
}
for (const [name, Ts] of cases) {
  const shape = SHAPES[name]
  const T = Number(Ts)
  const dw = await generateLayerWeights(ctx, shape, { seed: 1, std: 0.02, dtype: 'f16' })
  const layer = new WebGpuMoeLayer(ctx, { weightsDtype: 'f16' })
  const xb = layer.uploadHidden(randomHidden(T, shape.hidden, T), T, shape.hidden)
  const pipeline = await benchPipeline(layer, dw, shape)
  // a new batch id per call, as in a decode loop (the id and its seed are words of the stage uniforms, rewritten when they change)
  const batches = Array.from({ length: 256 }, (_, id) => deviceBatch(layer, xb, T, shape.hidden, id))
  let n = 0
  const once = () => void pipeline.submit(batches[n++ & 255])
  for (let i = 0; i < 50; i++) once()
  console.log(JSON.stringify({ case: `${name} f16 T=${T} pipeline submit`, idleUs: await hostUs(once, 0), busyUs: await hostUs(once, 40), idleAgainUs: await hostUs(once, 0) }))
  for (const b of [dw.router, dw.gate, dw.up, dw.down]) b.destroy()
  ctx.pool.release(xb)
}
process.exit(0)
