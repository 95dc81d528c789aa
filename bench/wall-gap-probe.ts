/**
 * Design probe (issue 15): where the wall time of back-to-back layer calls goes beyond the sum of
 * the kernels' GPU times. Per case (shape, T, f16 or int8 weights), the layer's device pipeline:
 * - wall ms per call over n = 20 and n = 200 back-to-back submits (one wait at the end), and the
 *   host share of it (the submit loop before the wait);
 * - GPU ms: the sum of kernel times of a profiled call (each kernel in its own timed pass);
 * and one int8 GEMM kernel alone, submitted back to back with a direct grid and with the
 * indirect grid the pipeline uses, against its timestamp time.
 * Dawn toggles come from --toggles (e.g. skip_validation), so a second process can compare.
 *
 * Usage: node wall-gap-probe.mjs [--toggles a,b] [--cases mixtral:int8:32,...]
 */
import { randomHidden } from '@moe-route/backend-cpu'
import type { ModelShape } from '@moe-route/core'
import {
  GpuContext,
  ProgramCache,
  WebGpuMoeLayer,
  acquireDevice,
  generateLayerWeights,
  int8GemmProgram,
  int8SpareRows,
  int8TileDims,
  quantizeDeviceWeights,
  withActiveList,
  type DeviceInt8Weights,
  type DeviceLayerWeights,
} from '@moe-route/backend-webgpu'
import { median, timeBackToBack } from './lib/gpu-timing.js'
import { benchPipeline, deviceBatch } from './lib/pipeline.js'

const args = process.argv.slice(2)
const opt = (name: string, def: string) => {
  const i = args.indexOf(name)
  return i >= 0 && args[i + 1] ? args[i + 1] : def
}
const toggles = opt('--toggles', '')
const acquired = await acquireDevice({
  powerPreference: 'high-performance',
  dawnFlags: [`enable-dawn-features=allow_unsafe_apis${toggles ? `,${toggles}` : ''}`, 'disable-dawn-features=timestamp_quantization'],
})
const ctx = new GpuContext(acquired)
const prof = new GpuContext(acquired, { profile: true })
const device = acquired.device
console.log(JSON.stringify({ probe: 'wall-gap', toggles, adapter: acquired.adapterName, device: acquired.adapterInfo.device }))

const SHAPES: Record<string, ModelShape> = {
  mixtral: { experts: 8, topK: 2, hidden: 4096, intermediate: 14336, normalizeTopK: true },
  olmoe: { experts: 64, topK: 8, hidden: 2048, intermediate: 1024, normalizeTopK: false },
}
const cases = opt('--cases', 'mixtral:int8:32,mixtral:int8:128,mixtral:f16:32,mixtral:f16:512,olmoe:int8:32,olmoe:int8:128').split(',').map((c) => c.split(':'))
const weights = new Map<string, { dw: DeviceLayerWeights; w8: DeviceInt8Weights }>()
for (const [shapeName, dtype, Ts] of cases) {
  const shape = SHAPES[shapeName]
  const T = Number(Ts)
  let w = weights.get(shapeName)
  if (!w) {
    for (const old of weights.values()) {
      for (const b of [old.dw.router, old.dw.gate, old.dw.up, old.dw.down]) b.destroy()
      old.w8.destroy()
    }
    weights.clear()
    const dw = await generateLayerWeights(ctx, shape, { seed: 1, std: 0.02, dtype: 'f16' })
    weights.set(shapeName, (w = { dw, w8: await quantizeDeviceWeights(ctx, dw) }))
  }
  const int8 = dtype === 'int8'
  const W = int8 ? w.w8 : w.dw
  const layer = new WebGpuMoeLayer(ctx, int8 ? { int8Kernel: 'auto' } : { weightsDtype: 'f16' })
  const player = new WebGpuMoeLayer(prof, int8 ? { int8Kernel: 'auto' } : { weightsDtype: 'f16' })
  const x = randomHidden(T, shape.hidden, T)
  const xb = layer.uploadHidden(x, T, shape.hidden)
  const pipeline = await benchPipeline(layer, W, shape)
  const batch = deviceBatch(layer, xb, T, shape.hidden)
  const once = () => void pipeline.submit(batch)
  const wall20 = await timeBackToBack(device, once, 20, 1000)
  const wall200 = await timeBackToBack(device, once, 200, 150)
  // the host's share: the submit loop alone, then the wait
  const hostRuns: { host: number; wall: number }[] = []
  for (let r = 0; r < 3; r++) {
    await device.queue.onSubmittedWorkDone()
    const t0 = performance.now()
    for (let i = 0; i < 50; i++) once()
    const t1 = performance.now()
    await device.queue.onSubmittedWorkDone()
    hostRuns.push({ host: (t1 - t0) / 50, wall: (performance.now() - t0) / 50 })
  }
  const pp = await benchPipeline(player, W, shape)
  const gpu: { total: number; kernels: Record<string, number> }[] = []
  for (let i = 0; i < 3; i++) {
    const k = (await pp.forward({ id: i, tokens: T, hidden: x }, { detail: 'telemetry', output: 'norm' })).kernels ?? {}
    gpu.push({ total: Object.values(k).reduce((a, b) => a + b, 0), kernels: k })
  }
  gpu.sort((a, b) => a.total - b.total)
  console.log(JSON.stringify({ case: `${shapeName}:${dtype}:${T}`, toggles, wall20, wall200, hostMs: median(hostRuns.map((r) => r.host)), wall50: median(hostRuns.map((r) => r.wall)), gpuMs: gpu[1].total, kernels: gpu[1].kernels }))
  ctx.pool.release(xb)

  // the int8 gate+up GEMM alone: direct grid vs the indirect grid, back to back
  if (int8) {
    const { hidden: H, intermediate: I, experts: E, topK: k } = shape
    const rowsHint = Math.max(1, Math.ceil((T * k) / E))
    const cfg = layer.int8Gemm(rowsHint, H, I)
    if (cfg.variant !== 'subgroup-matrix' || rowsHint <= 2) continue
    const R = rowsHint * E
    const Ra = R + int8SpareRows(cfg)
    const offs = new Int32Array(E + 1).map((_, e) => e * rowsHint)
    const xq = ctx.storage(Ra * H, 'xq')
    const sx = ctx.storage(Ra * 4, 'sx')
    const act = ctx.storage(R * I * 4, 'act')
    const offsets = ctx.upload(withActiveList(offs, E), 'offsets')
    const prog = int8GemmProgram('gateup', cfg)
    const { bm, bn } = int8TileDims(cfg)
    const grid = [Math.ceil(I / bn), Math.ceil(rowsHint / bm), E]
    const indirect = device.createBuffer({ size: 16, usage: 0x100 | 0x80 | 0x8 /* INDIRECT | STORAGE | COPY_DST */ })
    device.queue.writeBuffer(indirect, 0, new Uint32Array([...grid, 0]))
    const bufs = [xq, sx, offsets, w.w8.gateQ, w.w8.upQ, w.w8.gateScale, w.w8.upScale, act]
    ProgramCache.get(device, prog)
    const one = (ind: boolean) => () => {
      const rec = ctx.recorder('gemm alone')
      rec.run(prog, { kdim: H, ndim: I, experts: E, rowsAlloc: Ra, ...(ind ? { indirect: { buffer: indirect, offset: 0 } } : { maxRows: rowsHint }) }, bufs)
      rec.submitNoWait()
    }
    const direct = await timeBackToBack(device, one(false), 100, 300)
    const viaIndirect = await timeBackToBack(device, one(true), 100, 300)
    const pk: number[] = []
    for (let i = 0; i < 5; i++) {
      const rec = prof.recorder('gemm alone')
      rec.run(prog, { kdim: H, ndim: I, experts: E, rowsAlloc: Ra, maxRows: rowsHint }, bufs)
      const r = await rec.submit()
      pk.push(Object.values(r.kernels ?? {}).reduce((a, b) => a + b, 0))
    }
    console.log(JSON.stringify({ case: `${shapeName}:int8:${T} gate+up GEMM alone`, toggles, grid, directWallMs: direct, indirectWallMs: viaIndirect, gpuMs: median(pk) }))
    ctx.pool.release(xq, sx, act, offsets)
    indirect.destroy()
  }
}
process.exit(0)
