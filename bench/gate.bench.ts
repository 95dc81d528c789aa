/**
 * The gate matmul (logits = x · routerᵀ, f32) alone on a GPU host: the team kernels (what ran
 * before the tiled kernel, `gateTiles: 'off'`), the default plan table, and candidate tiles
 * forced at every T, side by side in one command. Shapes: Mixtral-8x7B (H 4096, E 8), OLMoE
 * (H 2048, E 64), Qwen1.5-MoE (H 2048, E 60: E not a multiple of the tile), T ∈ {1 … 4096}.
 * Per variant: GPU ms of the gate kernel (timestamp queries, median of `--iters` profiled
 * submits), wall ms per call back to back (no timestamps), TFLOPS (2·T·E·H per GPU time), x read
 * rate (T·H·4 bytes per GPU time: the ceiling when E is small) and the largest error against
 * the CPU reference relative to max |cpu| (the tests assert ≤ 1e-4).
 *
 * Usage: node gate.bench.mjs [--out dir] [--tiny] [--tokens 1,32,2048] [--shapes mixtral,olmoe,qwen]
 *   [--variants teams,default,E8a,...] [--iters n] [--no-parity]
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { parseArgs } from 'node:util'
import { gateMatmul } from '@moe-route/backend-cpu'
import { randomHidden } from '@moe-route/workloads'
import { GpuContext, WebGpuMoeLayer, acquireDevice, gateTileFor, gateTileProblem, type GateTile, type GateTilePlan } from '@moe-route/backend-webgpu'
import { median, timeBackToBack } from './lib/gpu-timing.js'

const { values: argv } = parseArgs({
  options: {
    out: { type: 'string', default: 'bench/results' },
    tiny: { type: 'boolean', default: false },
    tokens: { type: 'string' },
    shapes: { type: 'string' },
    variants: { type: 'string' },
    iters: { type: 'string' },
    'no-parity': { type: 'boolean', default: false },
  },
})
const list = (v: string | undefined) => (v ? v.split(',') : null)
const tiny = argv.tiny
const outDir = argv.out
const iters = Number(argv.iters ?? (tiny ? 3 : 15))
const shapesWanted = list(argv.shapes)
const variantsWanted = list(argv.variants)
const SHAPES = (
  tiny
    ? [
        { label: 'tiny-e8', hidden: 256, experts: 8 },
        { label: 'tiny-e60', hidden: 256, experts: 60 },
      ]
    : [
        { label: 'mixtral-8x7b', hidden: 4096, experts: 8 },
        { label: 'olmoe-1b-7b', hidden: 2048, experts: 64 },
        { label: 'qwen1.5-moe-a2.7b', hidden: 2048, experts: 60 },
      ]
).filter((s) => !shapesWanted || shapesWanted.some((p) => s.label.startsWith(p)))
const TOKENS = (list(argv.tokens) ?? (tiny ? ['1', '32', '700'] : ['1', '8', '32', '128', '256', '512', '1024', '2048', '4096'])).map(Number)

// candidate tiles (forced at every T of the shapes whose E they cover), named by expert class;
// E64g needs 18 KiB of workgroup memory (over what every device has): what the 16 KiB bound costs
const CANDIDATES: Record<string, GateTile & { maxExperts: number }> = {
  E8a: { maxExperts: 8, bt: 16, be: 8, tm: 2, tn: 2, ks: 8, bk4: 32 },
  E8b: { maxExperts: 8, bt: 8, be: 8, tm: 1, tn: 2, ks: 8, bk4: 32 },
  E8c: { maxExperts: 8, bt: 32, be: 8, tm: 4, tn: 2, ks: 8, bk4: 16 },
  E8d: { maxExperts: 8, bt: 4, be: 8, tm: 1, tn: 2, ks: 16, bk4: 64 },
  E8e: { maxExperts: 8, bt: 16, be: 8, tm: 2, tn: 4, ks: 16, bk4: 32 },
  E8f: { maxExperts: 8, bt: 8, be: 8, tm: 1, tn: 8, ks: 32, bk4: 32 },
  E64a: { maxExperts: 256, bt: 16, be: 64, tm: 2, tn: 4, ks: 2, bk4: 8 },
  E64b: { maxExperts: 256, bt: 32, be: 64, tm: 2, tn: 4, ks: 1, bk4: 8 },
  E64c: { maxExperts: 256, bt: 64, be: 64, tm: 4, tn: 4, ks: 1, bk4: 4 },
  E64d: { maxExperts: 256, bt: 16, be: 64, tm: 1, tn: 4, ks: 1, bk4: 8 },
  E64e: { maxExperts: 256, bt: 32, be: 64, tm: 4, tn: 4, ks: 2, bk4: 8 },
  E64f: { maxExperts: 256, bt: 8, be: 64, tm: 1, tn: 4, ks: 2, bk4: 8 },
  E64g: { maxExperts: 256, bt: 64, be: 64, tm: 4, tn: 4, ks: 1, bk4: 8 },
}
type Variant = { name: string; plans: readonly GateTilePlan[] | 'off' | undefined; experts: (E: number) => boolean }
const variants: Variant[] = [
  { name: 'teams', plans: 'off' as const, experts: () => true },
  { name: 'default', plans: undefined, experts: () => true },
  ...Object.entries(CANDIDATES).map(([name, { maxExperts, ...tile }]): Variant => ({
    name,
    plans: [{ maxExperts: Infinity, minOutputs: 0, tile }],
    experts: (E: number) => E <= maxExperts && (maxExperts > 8 ? E > 32 : true),
  })),
].filter((v) => !variantsWanted || variantsWanted.includes(v.name))

const acquired = await acquireDevice({ powerPreference: 'high-performance', dawnFlags: ['disable-dawn-features=timestamp_quantization'] })
const ctx = new GpuContext(acquired)
const prof = acquired.features.timestampQuery ? new GpuContext(acquired, { profile: true }) : null
const device = acquired.device
const limits = { maxInvocations: device.limits.maxComputeInvocationsPerWorkgroup, maxWgBytes: device.limits.maxComputeWorkgroupStorageSize }
console.log(JSON.stringify({ adapter: acquired.adapterName, info: acquired.adapterInfo, timestamps: Boolean(prof), limits }))
for (const [name, { maxExperts: _, ...tile }] of Object.entries(CANDIDATES)) {
  const why = gateTileProblem(tile, limits)
  if (why) console.log(JSON.stringify({ tile: name, error: why }))
}

const rows: Record<string, unknown>[] = []
for (const { label, hidden: H, experts: E } of SHAPES) {
  const router = randomHidden(E, H, 2, 0.02)
  for (const T of TOKENS) {
    const x = randomHidden(T, H, T)
    const cpu = argv['no-parity'] ? null : gateMatmul(x, router, T, H, E)
    let scale = 1e-30
    if (cpu) for (const v of cpu) scale = Math.max(scale, Math.abs(v))
    const xb = ctx.upload(x, 'bench x')
    const rb = ctx.upload(router, 'bench router')
    const out = ctx.storage(T * E * 4, 'bench logits')
    for (const v of variants) {
      if (!v.experts(E)) continue
      const opts = v.plans === undefined ? {} : { gateTiles: v.plans }
      try {
        const layer = new WebGpuMoeLayer(ctx, opts)
        const program = layer.gateKernel(T, E)
        const params = { tokens: T, experts: E, hidden: H }
        // parity (and compile) first
        const rec = ctx.recorder('bench gate')
        rec.run(program, params, [xb, rb, out])
        rec.read(out, T * E * 4)
        const gpu = new Float32Array((await rec.submit()).reads[0])
        let err = 0
        if (cpu) for (let i = 0; i < cpu.length; i++) err = Math.max(err, Number.isFinite(gpu[i]) ? Math.abs(gpu[i] - cpu[i]) : Infinity)
        const n = tiny ? 3 : Math.max(20, Math.min(400, Math.ceil(400_000 / T)))
        const wallMs = await timeBackToBack(device, () => {
          const r = ctx.recorder('bench gate', { profile: false })
          r.run(program, params, [xb, rb, out])
          r.submitNoWait()
        }, n, tiny ? 0 : 150)
        let gpuMs: number | null = null
        const gpuRuns: number[] = []
        if (prof) {
          for (let i = 0; i < iters; i++) {
            const r = prof.recorder('bench gate')
            r.run(program, params, [xb, rb, out])
            gpuRuns.push((await r.submit()).kernels?.gate ?? NaN)
          }
          gpuMs = median(gpuRuns)
        }
        const ms = gpuMs ?? wallMs
        const tile = v.plans === 'off' ? null : gateTileFor(T, E, v.plans)
        const row = {
          shape: label, T, H, E, variant: v.name, kernel: program.cacheKey, tile, gpuMs, gpuRuns, wallMs,
          tflops: (2 * T * E * H) / (ms * 1e9), xTBs: (T * H * 4) / (ms * 1e9), relErr: cpu ? err / scale : null,
        }
        rows.push(row)
        console.log(JSON.stringify(row))
      } catch (e) {
        console.log(JSON.stringify({ shape: label, T, variant: v.name, error: (e as Error).message.slice(0, 400) }))
      }
    }
    ctx.pool.release(xb, rb, out)
  }
}
mkdirSync(outDir, { recursive: true })
writeFileSync(join(outDir, 'gate.json'), JSON.stringify({ bench: 'gate', date: new Date().toISOString(), adapter: acquired.adapterName, info: acquired.adapterInfo, rows }, null, 2))
console.log('wrote gate.json')
process.exit(0)
