/**
 * The int8 (W8A8) expert kernels side by side on a GPU host: dot4I8Packed and subgroup-matrix
 * tiles, the fused layer (dynamic gating) at Mixtral-8x7B and OLMoE shapes, T ∈ {1 … 4096}.
 * Per variant: ms per call (back-to-back), the int8 GEMM kernels' GPU time (timestamp
 * queries), int8 TOPS of those GEMMs, and the relative L2 of its output to the dot4 output
 * (both int8: must agree to f32 rounding) and to the f16 layer (int8 accuracy).
 *
 * Usage: node int8-sweep.bench.mjs [--out dir] [--tokens 1,8,...] [--tiny] [--shapes mixtral,olmoe] [--plans D1,P2] [--robustness off]
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { relativeL2 } from '@moe-route/backend-cpu'
import { randomHidden } from '@moe-route/workloads'
import type { ModelShape } from '@moe-route/core'
import { GpuContext, WebGpuMoeLayer, acquireDevice, generateLayerWeights, quantizeDeviceWeights, type Int8TilePlan, type SgmTile } from '@moe-route/backend-webgpu'
import { median, timeBackToBack } from './lib/gpu-timing.js'
import { benchPipeline, deviceBatch } from './lib/pipeline.js'

const args = process.argv.slice(2)
const flag = (name: string) => args.includes(name)
const opt = (name: string, def: string) => {
  const i = args.indexOf(name)
  return i >= 0 && args[i + 1] ? args[i + 1] : def
}
const tiny = flag('--tiny')
const outDir = opt('--out', 'bench/results')
const SHAPES: (ModelShape & { label: string })[] = (tiny
  ? [{ label: 'tiny', experts: 8, topK: 2, hidden: 128, intermediate: 256, normalizeTopK: true }]
  : [
      { label: 'mixtral-8x7b', experts: 8, topK: 2, hidden: 4096, intermediate: 14336, normalizeTopK: true },
      { label: 'olmoe-1b-7b', experts: 64, topK: 8, hidden: 2048, intermediate: 1024, normalizeTopK: false },
    ]
).filter((s) => !opt('--shapes', '') || opt('--shapes', '').split(',').some((p) => s.label.startsWith(p)))
const TOKENS = opt('--tokens', tiny ? '1,8,32' : '1,8,32,128,512,2048,4096').split(',').map(Number)

type Variant = { name: string; int8Kernel: 'dot4' | 'subgroup-matrix'; int8Tiles?: Int8TilePlan[]; int8GemvMaxRows?: number; tokens?: (T: number) => boolean }
type T4 = [sgM: number, sgN: number, fm: number, fn: number, sgK?: number, unroll?: number, stage?: 'workgroup', aPad?: number, stageB?: boolean]
const tile = (t: T4 | SgmTile): SgmTile => {
  if (!Array.isArray(t)) return t
  const [sgM, sgN, fm, fn, sgK = 1, unroll = 1, stage, aPad, stageB] = t
  return { sgM, sgN, fm, fn, sgK, unroll, ...(stage ? { stage } : {}), ...(aPad !== undefined ? { aPad } : {}), ...(stageB !== undefined ? { stageB } : {}) }
}
const S1: SgmTile = { sgM: 2, sgN: 2, fm: 2, fn: 4, unroll: 2, stage: 'workgroup' }
// [name, gate+up tile, down tile, which T]: decode (one 16-row fragment), mid, prefill tiles
const PLANS: [string, T4 | SgmTile, T4 | SgmTile, (T: number) => boolean][] = [
  ['D1', [1, 2, 1, 2, 4, 2], [1, 2, 1, 2, 8, 2], (T) => T <= 32],
  ['D2', [1, 4, 1, 1, 4, 2], [1, 4, 1, 1, 8, 2], (T) => T <= 32],
  ['D3', [1, 1, 1, 4, 8, 1], [1, 1, 1, 4, 8, 1], (T) => T <= 32],
  ['D4', [1, 2, 1, 2, 2, 4], [1, 2, 1, 2, 4, 4], (T) => T <= 32],
  ['D5', [1, 2, 1, 2, 8, 1], [1, 2, 1, 2, 16, 1], (T) => T <= 32],
  ['M1', [1, 2, 2, 2, 2, 2], [1, 2, 2, 2, 4, 2], (T) => T >= 8 && T <= 512],
  ['M2', [1, 2, 4, 2, 2, 1], [1, 2, 4, 2, 4, 1], (T) => T >= 8 && T <= 512],
  ['M3', [2, 2, 1, 2, 2, 2], [2, 2, 1, 2, 4, 2], (T) => T >= 8 && T <= 512],
  ['P1', [2, 2, 4, 2], [2, 2, 4, 2], (T) => T >= 128],
  ['P2', [2, 2, 2, 4], [2, 2, 2, 4], (T) => T >= 128],
  ['P3', [4, 2, 2, 2], [4, 2, 2, 2], (T) => T >= 128],
  ['P4', [2, 4, 4, 1], [2, 4, 4, 1], (T) => T >= 128],
  ['P5', [2, 2, 4, 2, 1, 2], [2, 2, 4, 2, 1, 2], (T) => T >= 128],
  ['P6', [2, 2, 4, 2], [2, 2, 4, 4], (T) => T >= 128],
  ['P7', [2, 2, 4, 2, 2], [2, 2, 4, 2, 2], (T) => T >= 128],
  // staged through workgroup memory (stage 'workgroup'; BK = 32·unroll)
  ['S1', [2, 2, 2, 4, 1, 2, 'workgroup'], [2, 2, 2, 4, 1, 2, 'workgroup'], (T) => T >= 32],
  ['S2', [4, 2, 2, 4, 1, 2, 'workgroup'], [4, 2, 2, 4, 1, 2, 'workgroup'], (T) => T >= 128],
  ['S3', [2, 4, 2, 4, 1, 2, 'workgroup'], [2, 4, 2, 4, 1, 2, 'workgroup'], (T) => T >= 128],
  ['S4', [4, 2, 2, 4, 1, 1, 'workgroup'], [4, 2, 2, 4, 1, 1, 'workgroup'], (T) => T >= 128],
  ['S5', [4, 2, 2, 2, 1, 4, 'workgroup'], [4, 2, 2, 2, 1, 4, 'workgroup'], (T) => T >= 128],
  ['S6', [1, 4, 1, 2, 1, 2, 'workgroup'], [1, 4, 1, 2, 1, 2, 'workgroup'], (T) => T <= 128],
  ['S7', [2, 2, 1, 4, 1, 4, 'workgroup'], [2, 2, 1, 4, 1, 4, 'workgroup'], (T) => T >= 32 && T <= 512],
  // A row padding 0 / 32 / 48 bytes (row strides 64 / 96 / 112), and A staged with B from storage
  ['S1p0', [2, 2, 2, 4, 1, 2, 'workgroup', 0], [2, 2, 2, 4, 1, 2, 'workgroup', 0], (T) => T >= 32],
  ['S1p32', [2, 2, 2, 4, 1, 2, 'workgroup', 32], [2, 2, 2, 4, 1, 2, 'workgroup', 32], (T) => T >= 32],
  ['S1p48', [2, 2, 2, 4, 1, 2, 'workgroup', 48], [2, 2, 2, 4, 1, 2, 'workgroup', 48], (T) => T >= 32],
  ['S1a0', [2, 2, 2, 4, 1, 2, 'workgroup', 0, false], [2, 2, 2, 4, 1, 2, 'workgroup', 0, false], (T) => T >= 32],
  ['S1a16', [2, 2, 2, 4, 1, 2, 'workgroup', 16, false], [2, 2, 2, 4, 1, 2, 'workgroup', 16, false], (T) => T >= 32],
  ['S3p32', [2, 4, 2, 4, 1, 2, 'workgroup', 32], [2, 4, 2, 4, 1, 2, 'workgroup', 32], (T) => T >= 128],
  ['S2p32', [4, 2, 2, 4, 1, 2, 'workgroup', 32], [4, 2, 2, 4, 1, 2, 'workgroup', 32], (T) => T >= 128],
  // two stages (double-buffered workgroup memory), rows-first raster (B column tiles shared by consecutive workgroups)
  ['S1b', { ...S1, stages: 2 }, { ...S1, stages: 2 }, (T) => T >= 32],
  ['S1r', { ...S1, raster: 'rows-first' }, { ...S1, raster: 'rows-first' }, (T) => T >= 128],
  ['S1br', { ...S1, stages: 2, raster: 'rows-first' }, { ...S1, stages: 2, raster: 'rows-first' }, (T) => T >= 128],
  ['S3r', { ...S1, sgN: 4, raster: 'rows-first' }, { ...S1, sgN: 4, raster: 'rows-first' }, (T) => T >= 512],
  ['S2r', { ...S1, sgM: 4, raster: 'rows-first' }, { ...S1, sgM: 4, raster: 'rows-first' }, (T) => T >= 512],
  ['P2r', { sgM: 2, sgN: 2, fm: 2, fn: 4, raster: 'rows-first' }, { sgM: 2, sgN: 2, fm: 2, fn: 4, raster: 'rows-first' }, (T) => T >= 512],
  ['S7b', { sgM: 2, sgN: 2, fm: 1, fn: 4, unroll: 2, stage: 'workgroup', stages: 2 }, { sgM: 2, sgN: 2, fm: 1, fn: 4, unroll: 2, stage: 'workgroup', stages: 2 }, (T) => T <= 512],
  ['S6b', { sgM: 1, sgN: 4, fm: 1, fn: 2, unroll: 2, stage: 'workgroup', stages: 2 }, { sgM: 1, sgN: 4, fm: 1, fn: 2, unroll: 2, stage: 'workgroup', stages: 2 }, (T) => T <= 128],
  // staged diagnostics: one subgroup, one subgroup with B from storage, two subgroups along M / N, BK 64
  ['X1', [1, 1, 1, 1, 1, 1, 'workgroup'], [1, 1, 1, 1, 1, 1, 'workgroup'], () => true],
  ['X2', [1, 1, 1, 1, 1, 1, 'workgroup', 16, false], [1, 1, 1, 1, 1, 1, 'workgroup', 16, false], () => true],
  ['X3', [2, 1, 1, 1, 1, 1, 'workgroup'], [2, 1, 1, 1, 1, 1, 'workgroup'], () => true],
  ['X4', [1, 2, 1, 1, 1, 1, 'workgroup'], [1, 2, 1, 1, 1, 1, 'workgroup'], () => true],
  ['X5', [1, 1, 1, 1, 1, 2, 'workgroup'], [1, 1, 1, 1, 1, 2, 'workgroup'], () => true],
  ['X6', [1, 1, 2, 1, 1, 1, 'workgroup'], [1, 1, 2, 1, 1, 1, 'workgroup'], () => true],
  ['X7', [1, 1, 1, 2, 1, 1, 'workgroup'], [1, 1, 1, 2, 1, 1, 'workgroup'], () => true],
]
// --robustness off: Dawn's disable_robustness toggle (no bounds clamping of buffer accesses; the kernels never read out of bounds)
const robustOff = opt('--robustness', 'on') === 'off'
const acquired = await acquireDevice({ powerPreference: 'high-performance', unsafeApis: true, dawnFlags: ['disable-dawn-features=timestamp_quantization', ...(robustOff ? ['enable-dawn-features=disable_robustness'] : [])] })
const ctx = new GpuContext(acquired)
const prof = acquired.features.timestampQuery ? new GpuContext(acquired, { profile: true }) : null
const device = acquired.device
console.log(JSON.stringify({ adapter: acquired.adapterName, robustness: !robustOff, features: acquired.features, limits: { wgStorage: device.limits.maxComputeWorkgroupStorageSize, invocations: device.limits.maxComputeInvocationsPerWorkgroup } }))
// every GEMM variant with int8GemvMaxRows 0 (GEMMs at every T); 'gemv' = the decode kernels at every T ≤ 512
const variants: Variant[] = [
  { name: 'dot4', int8Kernel: 'dot4', int8GemvMaxRows: 0, tokens: (T) => !flag('--no-dot4') || T <= 512 },
  { name: 'gemv', int8Kernel: 'dot4', int8GemvMaxRows: Infinity, tokens: (T) => T <= 512 },
  { name: 'auto', int8Kernel: acquired.features.subgroupMatrix ? 'subgroup-matrix' : 'dot4' },
]
if (acquired.features.subgroupMatrix) {
  variants.push({ name: 'sgm default', int8Kernel: 'subgroup-matrix', int8GemvMaxRows: 0 })
  const only = opt('--plans', '') ? opt('--plans', '').split(',') : null
  for (const [name, gu, dn, tokens] of PLANS) if (!only || only.includes(name)) variants.push({ name: `sgm ${name} ${JSON.stringify(gu)} ${JSON.stringify(dn)}`, int8Kernel: 'subgroup-matrix', int8GemvMaxRows: 0, int8Tiles: [{ maxRows: Infinity, gateup: tile(gu), down: tile(dn) }], tokens })
}

const rows: Record<string, unknown>[] = []
for (const shape of SHAPES) {
  const { label, ...s } = shape
  const dw = await generateLayerWeights(ctx, s, { seed: 1, std: 0.02, dtype: 'f16' })
  const w8 = await quantizeDeviceWeights(ctx, dw)
  const f16 = new WebGpuMoeLayer(ctx, { weightsDtype: 'f16' })
  const layers = variants.map((v) => {
    try {
      const o = { int8Kernel: v.int8Kernel, ...(v.int8Tiles ? { int8Tiles: v.int8Tiles } : {}), ...(v.int8GemvMaxRows !== undefined ? { int8GemvMaxRows: v.int8GemvMaxRows } : {}) }
      const l = new WebGpuMoeLayer(ctx, o)
      l.int8Gemm(1, s.hidden, s.intermediate)
      return { v, l, pl: prof ? new WebGpuMoeLayer(prof, o) : null }
    } catch (e) {
      console.log(JSON.stringify({ shape: label, variant: v.name, error: (e as Error).message }))
      return null
    }
  })
  for (const T of TOKENS) {
    const x = randomHidden(T, s.hidden, T)
    const xb = f16.uploadHidden(x, T, s.hidden)
    const ref16 = await (await benchPipeline(f16, dw, s)).forward({ id: 0, tokens: T, hidden: x }, { detail: 'telemetry', output: 'host' })
    let refDot4: Float32Array | null = null
    const rowsTotal = ref16.counts.loadAfter.reduce((a, b) => a + b, 0)
    // int8 multiply-accumulates of the two GEMMs: rows · (2·I·H + H·I)
    const ops = 2 * rowsTotal * 3 * s.hidden * s.intermediate
    for (const entry of layers) {
      if (!entry) continue
      const { v, l, pl } = entry
      if (v.tokens && !v.tokens(T)) continue
      try {
        const pipeline = await benchPipeline(l, w8, s)
        const r = await pipeline.forward({ id: 0, tokens: T, hidden: x }, { detail: 'telemetry', output: 'host' })
        if (!refDot4) refDot4 = r.output! // the first variant run at this T: dot4, or (--no-dot4, T > 512) the next
        const n = Math.max(3, Math.min(20, Math.ceil(2000 / T)))
        const batch = deviceBatch(l, xb, T, s.hidden)
        const ms = await timeBackToBack(device, () => void pipeline.submit(batch), n)
        let kernels: Record<string, number> | undefined
        let gemmMs: number | null = null
        if (pl) {
          const ks: Record<string, number>[] = []
          const pp = await benchPipeline(pl, w8, s)
          for (let i = 0; i < 3; i++) ks.push((await pp.forward({ id: i, tokens: T, hidden: x }, { detail: 'telemetry', output: 'norm' })).kernels ?? {})
          const gm = ks.map((k) => Object.entries(k).filter(([n]) => n.includes('experts-int8-') && !n.includes('quantize')).reduce((a, [, t]) => a + t, 0))
          gemmMs = median(gm)
          kernels = ks[gm.indexOf(gemmMs)] ?? ks[1]
        }
        const row = {
          shape: label, T, variant: v.name, ms, gemmMs, gemmTops: gemmMs ? ops / (gemmMs * 1e9) : null, kernels,
          relL2VsDot4: relativeL2(r.output!, refDot4!), relL2VsF16: relativeL2(r.output!, ref16.output!), finite: r.output!.every(Number.isFinite),
        }
        rows.push(row)
        console.log(JSON.stringify(row))
      } catch (e) {
        console.log(JSON.stringify({ shape: label, T, variant: v.name, error: (e as Error).message.slice(0, 400) }))
      }
    }
    ctx.pool.release(xb)
  }
  w8.destroy()
  for (const b of [dw.router, dw.gate, dw.up, dw.down]) b.destroy()
}
mkdirSync(outDir, { recursive: true })
writeFileSync(join(outDir, `int8-sweep${robustOff ? '-norobust' : ''}.json`), JSON.stringify({ bench: 'int8-sweep', date: new Date().toISOString(), adapter: acquired.adapterName, robustness: !robustOff, rows }, null, 2))
console.log('wrote int8-sweep')
process.exit(0)
