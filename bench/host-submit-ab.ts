/**
 * Host cost of one back-to-back device-pipeline submit, this build against a baseline build of
 * the package side by side in one process (issue 15: wall ≤ 1.1× GPU at small T). Each side
 * gets its own device (Dawn's null backend by default, which executes nothing: our JS plus
 * Dawn's encoding and validation; `--device` for the real adapter, e.g. lavapipe), the
 * configured layer's pipeline (softmax-top-k, exact-size grouping, f16 weights) and a batch
 * already on the device, submitted under a new batch id each call (as in a decode loop). Rounds of `--calls` submits alternate between the sides; prints µs
 * per submit (median and min over rounds) and the ratio. `--js-only`: after set-up, the per-batch
 * native calls (command encoders, passes, clears, queue writes and submits) are replaced by
 * no-op stand-ins on both sides, so what is left is our JavaScript (plus any buffer, bind
 * group or uniform it still creates).
 *
 * Usage: npx tsx bench/host-submit-ab.ts [--baseline path/to/old/dist/index.js] [--device]
 *          [--js-only] [--capacity γ] [--int8] [--shape olmoe|mixtral|olmoe-like|tiny] [--T 1] [--rounds 15] [--calls 200]
 * (the baseline: a copy of an older `packages/backends/webgpu/dist/index.js` placed inside the
 * package folder, so its imports resolve)
 */
import { cpus } from 'node:os'
import { pathToFileURL } from 'node:url'
import { resolve } from 'node:path'
import { randomHidden } from '@moe-route/backend-cpu'
import type { ModelShape } from '@moe-route/core'
import * as current from '@moe-route/backend-webgpu'
import { median } from './lib/gpu-timing.js'
import { benchPipeline, deviceBatch } from './lib/pipeline.js'

type Backend = typeof current
const args = process.argv.slice(2)
const opt = (name: string, dflt: string) => {
  const i = args.indexOf(`--${name}`)
  return i >= 0 ? args[i + 1] : dflt
}
const real = args.includes('--device')
const jsOnly = args.includes('--js-only')
const T = Number(opt('T', '1'))
const rounds = Number(opt('rounds', '15'))
const calls = Number(opt('calls', '200'))
const shapeName = opt('shape', 'olmoe-like')
const SHAPES: Record<string, ModelShape> = {
  mixtral: { experts: 8, topK: 2, hidden: 4096, intermediate: 14336, normalizeTopK: true },
  olmoe: { experts: 64, topK: 8, hidden: 2048, intermediate: 1024, normalizeTopK: false },
  'olmoe-like': { experts: 64, topK: 8, hidden: 256, intermediate: 512, normalizeTopK: false },
  tiny: { experts: 8, topK: 2, hidden: 256, intermediate: 512, normalizeTopK: true },
}
const shape = SHAPES[shapeName]
if (!shape) throw new Error(`unknown shape ${shapeName}`)
// `--capacity γ`: a capacity-drop stage at γ after the router (a second device stage)
const capacity = args.includes('--capacity') ? Number(opt('capacity', '1')) : undefined
// `--int8`: int8 weights (quantized on the device from the f16 ones), the W8A8 expert kernels
const int8 = args.includes('--int8')
const baselinePath = args.includes('--baseline') ? opt('baseline', '') : null

const sides: { name: string; once: () => void; wait: () => Promise<unknown> }[] = []
async function side(name: string, be: Backend): Promise<void> {
  const acq = await be.acquireDevice(real ? { timestamps: false } : { dawnFlags: ['backend=null'], timestamps: false })
  const ctx = new be.GpuContext(acq)
  if (sides.length === 0) console.log(JSON.stringify({ bench: 'host-submit-ab', ...(jsOnly ? { native: 'stubbed (--js-only)' } : {}), adapter: acq.adapterName, cpu: cpus()[0]?.model, cores: cpus().length, node: process.version, shape: shapeName, ...shape, T, weights: int8 ? 'int8' : 'f16', ...(capacity !== undefined ? { capacityDrop: capacity } : {}) }))
  const dw = await be.generateLayerWeights(ctx, shape, { seed: 1, std: 0.02, dtype: 'f16' })
  const weights = int8 ? await be.quantizeDeviceWeights(ctx, dw) : dw
  const layer = new be.WebGpuMoeLayer(ctx, int8 ? {} : { weightsDtype: 'f16' })
  const xb = layer.uploadHidden(randomHidden(T, shape.hidden, T), T, shape.hidden)
  const pipeline = await benchPipeline(layer as never, weights as never, shape, capacity !== undefined ? { capacityFactor: capacity } : {}, undefined, be.createWebGpuPipeline as never)
  // a new batch id per call, as in a decode loop (the id and its seed are words of the stage uniforms)
  const batches = Array.from({ length: 256 }, (_, id) => deviceBatch(layer as never, xb, T, shape.hidden, id))
  let n = 0
  const once = () => void pipeline.submit(batches[n++ & 255])
  for (let i = 0; i < 50; i++) once()
  await acq.device.queue.onSubmittedWorkDone()
  if (jsOnly) stubNative(acq.device)
  sides.push({ name, once, wait: () => acq.device.queue.onSubmittedWorkDone() })
}
/** No-op stand-ins for the native calls of encoding and submitting a batch (see `--js-only`). */
class StubPass {
  setPipeline(): void {}
  setBindGroup(): void {}
  dispatchWorkgroups(): void {}
  dispatchWorkgroupsIndirect(): void {}
  end(): void {}
}
class StubEncoder {
  readonly pass = new StubPass()
  beginComputePass(): StubPass {
    return this.pass
  }
  clearBuffer(): void {}
  copyBufferToBuffer(): void {}
  finish(): object {
    return {}
  }
}
function stubNative(device: GPUDevice): void {
  const d = device as unknown as Record<string, unknown>
  d.createCommandEncoder = () => new StubEncoder()
  const q = device.queue as unknown as Record<string, unknown>
  q.writeBuffer = () => {}
  q.submit = () => {}
}

if (baselinePath) await side('baseline', (await import(pathToFileURL(resolve(baselinePath)).href)) as Backend)
await side('current', current)

const us: Record<string, number[]> = Object.fromEntries(sides.map((s) => [s.name, []]))
for (let r = 0; r < rounds; r++) {
  for (const s of r % 2 ? [...sides].reverse() : sides) {
    await s.wait()
    const t0 = performance.now()
    for (let i = 0; i < calls; i++) s.once()
    us[s.name].push(((performance.now() - t0) / calls) * 1000)
    await s.wait()
  }
}
const row: Record<string, number> = {}
for (const s of sides) {
  row[`${s.name}MedianUs`] = +median(us[s.name]).toFixed(2)
  row[`${s.name}MinUs`] = +Math.min(...us[s.name]).toFixed(2)
}
if (baselinePath) row.ratioMedian = +(row.currentMedianUs / row.baselineMedianUs).toFixed(3)
console.log(JSON.stringify(row))
process.exit(0)
