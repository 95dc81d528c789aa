/**
 * Host cost of the layer's device pipeline: ms per batch to encode and submit (nothing waits), on Dawn's
 * null backend, which executes nothing — the JS side alone (program lookups, bind groups,
 * uniforms, pooled buffers, Dawn's encoding and validation). Runs on any machine with the
 * `webgpu` package; prints the machine, the shape and ms per call (median of 7 rounds of 100).
 *
 * Usage: npx tsx bench/host-encode.bench.ts [--device]   (--device: the real adapter instead)
 */
import { cpus } from 'node:os'
import { GpuContext, WebGpuMoeLayer, acquireDevice, generateLayerWeights, quantizeDeviceWeights } from '@moe-route/backend-webgpu'
import { median } from './lib/gpu-timing.js'
import { benchPipeline, deviceBatch } from './lib/pipeline.js'

const real = process.argv.includes('--device')
const acq = await acquireDevice(real ? {} : { dawnFlags: ['backend=null'], timestamps: false })
const ctx = new GpuContext(acq)
console.log(JSON.stringify({ bench: 'host-encode', adapter: acq.adapterName, cpu: cpus()[0]?.model, cores: cpus().length, node: process.version }))
for (const shape of [
  { label: 'mixtral-like', experts: 8, topK: 2, hidden: 256, intermediate: 512, normalizeTopK: true },
  { label: 'olmoe-like', experts: 64, topK: 8, hidden: 256, intermediate: 512, normalizeTopK: false },
]) {
  const { label, ...s } = shape
  const dw = await generateLayerWeights(ctx, s, { seed: 1, dtype: 'f16' })
  const w8 = await quantizeDeviceWeights(ctx, dw)
  const x = new Float32Array(32 * s.hidden).map((_, i) => Math.sin(i))
  for (const [weights, layer, w] of [['f16', new WebGpuMoeLayer(ctx, { weightsDtype: 'f16' }), dw], ['int8', new WebGpuMoeLayer(ctx), w8]] as const) {
    for (const T of [1, 32]) {
      const xb = layer.uploadHidden(x.subarray(0, T * s.hidden), T, s.hidden)
      // the configured layer's device pipeline (router, no policy, exact-size grouping), submitted without a wait
      const pipeline = await benchPipeline(layer, w as never, s)
      const batch = deviceBatch(layer, xb, T, s.hidden)
      const once = () => void pipeline.submit(batch)
      for (let i = 0; i < 50; i++) once()
      const rounds: number[] = []
      for (let r = 0; r < 7; r++) {
        const t0 = performance.now()
        for (let i = 0; i < 100; i++) once()
        await acq.device.queue.onSubmittedWorkDone()
        rounds.push((performance.now() - t0) / 100)
      }
      console.log(JSON.stringify({ shape: label, ...s, weights, T, hostMsPerForward: median(rounds) }))
      ctx.pool.release(xb)
    }
  }
}
process.exit(0)
