/**
 * Dynamic gating against static gating (SPEC B.1–B.3, "Towards MoE Deployment") on one GPU
 * through the WebGPU backend, at the paper's two model settings:
 *
 * - `lm`:          E 512, top-2, H 1024, I 4096, static capacity fraction 0.05 (its language model)
 * - `mt-encoder`:  E 128, top-2, H 2048, I 8192, static capacity factor 1 (its NLLB MoE encoder)
 * - `mt-decoder`:  the MT shape with one token per sequence (one decode step)
 *
 * For every batch size (8 … 512 sequences, until memory or the time budget runs out) and both
 * sides it routes the same tokens (backend gate + softmax top-2), dispatches them with
 * `@moe-route/policy-dynamic-gating` in `dynamic` or `static` mode, runs the grouped SwiGLU
 * experts and the combine on the backend, and records throughput, kernel time, the dispatch
 * stats (slots, padding, modelled memory including fairseq's dense dispatch mask) and the GPU
 * memory the backend really allocated (every GPUDevice.createBuffer/destroy is counted).
 *
 * Usage (after `npm run build`):
 *   ../shared/gpu/prepare.sh bench/dynamic-gating.bench.ts
 *   source .gpu/env.sh && node .gpu/dynamic-gating.bench.mjs --out out/dynamic-gating
 * Smoke run on lavapipe:  XDG_RUNTIME_DIR=/tmp node <bundle> --tiny --out /tmp/dg
 * CPU reference run:      node <bundle> --backend cpu --preset small --out /tmp/dg-cpu
 *
 * Flags: --tiny | --preset paper|small|tiny, --backend webgpu|cpu, --out DIR,
 *   --settings lm,mt-encoder,mt-decoder, --batches 8,16,…, --seq-lm N, --seq-mt N, --iters N,
 *   --max-point-s S (stop a side after a point slower than this), --time-budget-s S (per setting),
 *   --gpu-memory-gb G (memory the fit model may use, default 80),
 *   --max-call-gb G (largest activation buffer one backend call may bind, default 1.5: plans
 *   whose rows × I would exceed it run as several calls over disjoint expert ranges),
 *   --experts-per-shard N|auto (weights split into shards of N experts, see below).
 */
import { createCpuBackend } from '@moe-route/backend-cpu'
import { contiguousPlacement, mulberry32, normal, softmaxTopK, type Backend, type DispatchPlan, type ExpertWeights, type LayerWeights, type ModelShape } from '@moe-route/core'
import { createDynamicGating, dispatchStats, type DispatchStats, type DynamicGatingOptions } from '@moe-route/policy-dynamic-gating'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

// ---- arguments -----------------------------------------------------------------------------

const argv = process.argv.slice(2)
const flag = (name: string): boolean => argv.includes(`--${name}`)
const opt = (name: string, fallback: string): string => {
  const i = argv.indexOf(`--${name}`)
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : fallback
}
type Preset = 'paper' | 'small' | 'tiny'
const preset: Preset = flag('tiny') ? 'tiny' : (opt('preset', 'paper') as Preset)
const backendKind = opt('backend', 'webgpu') as 'webgpu' | 'cpu'
const outDir = opt('out', 'out/dynamic-gating')
const iters = Number(opt('iters', preset === 'paper' ? '3' : '2'))
const maxPointS = Number(opt('max-point-s', preset === 'paper' ? '6' : '60'))
const timeBudgetS = Number(opt('time-budget-s', preset === 'paper' ? '75' : '600'))
const gpuMemoryBytes = Number(opt('gpu-memory-gb', '80')) * 2 ** 30
const maxCallBytes = Number(opt('max-call-gb', '1.5')) * 2 ** 30
/**
 * Experts per weight shard. The WebGPU backend keeps each matrix kind of a layer in one buffer
 * (≤ maxStorageBufferBindingSize, 2 GiB on the H100) and its kernels take up to 256 experts, so
 * the paper's layers (E 512; 128 × 2048 × 8192) run as several shards of the same layer on the
 * same device: every shard gets the rows of its experts, the outputs are summed. Both sides run
 * the same shards. Default: as many experts as fit 1.5 GiB of f32 per matrix, at most 256.
 */
const shardOpt = opt('experts-per-shard', 'auto')
/** Activations are f32 on both backends. */
const BYTES_PER_ELEMENT = 4

// ---- settings ------------------------------------------------------------------------------

interface Setting {
  readonly name: 'lm' | 'mt-encoder' | 'mt-decoder'
  readonly shape: ModelShape
  /** Tokens per sequence in one forward call (1 for a decode step). */
  readonly seqLen: number
  readonly staticOptions: Partial<DynamicGatingOptions>
  /** The paper's claim for this setting (SPEC B.3). */
  readonly paper: string
}

const dims = {
  paper: { lm: [512, 1024, 4096], mt: [128, 2048, 8192], seqLm: 128, seqMt: 64, batches: [8, 16, 32, 64, 128, 256, 512] },
  small: { lm: [512, 64, 256], mt: [128, 64, 256], seqLm: 16, seqMt: 16, batches: [1, 2, 4, 8] },
  tiny: { lm: [128, 16, 32], mt: [16, 16, 32], seqLm: 16, seqMt: 8, batches: [2, 4] },
}[preset]
const shapeOf = ([experts, hidden, intermediate]: number[], name: string): ModelShape => ({
  experts,
  topK: 2,
  hidden,
  intermediate,
  normalizeTopK: false,
  name,
})
const seqLm = Number(opt('seq-lm', String(dims.seqLm)))
const seqMt = Number(opt('seq-mt', String(dims.seqMt)))
const allSettings: Setting[] = [
  { name: 'lm', shape: shapeOf(dims.lm, 'paper-lm'), seqLen: seqLm, staticOptions: { capacityFraction: 0.05 }, paper: 'throughput up to 6.21×; activation memory 6.29 → 1.28 GB at batch 8; max batch 8 → 64' },
  { name: 'mt-encoder', shape: shapeOf(dims.mt, 'paper-mt'), seqLen: seqMt, staticOptions: { capacityFactor: 1 }, paper: 'throughput up to 5.75×; MT activation memory 1.89 → 1.05 GB' },
  { name: 'mt-decoder', shape: shapeOf(dims.mt, 'paper-mt'), seqLen: 1, staticOptions: { capacityFactor: 1 }, paper: 'throughput up to 2.58×' },
]
const wanted = opt('settings', allSettings.map((s) => s.name).join(',')).split(',')
const settings = allSettings.filter((s) => wanted.includes(s.name))
const batches = opt('batches', dims.batches.join(',')).split(',').map(Number)

// ---- data ----------------------------------------------------------------------------------

function normalPool(n: number, seed: number, std: number): Float32Array {
  const g = normal(mulberry32(seed))
  const a = new Float32Array(n)
  for (let i = 0; i < n; i++) a[i] = g() * std
  return a
}

/**
 * Layer weights without gigabytes of host RNG: each expert's matrices are distinct views into
 * one seeded normal(0, 0.02) pool, shifted per expert and matrix, so every expert has its own
 * values and its own GPU buffers. The router is drawn in full with std 1/√H, which gives
 * logits of unit variance and spreads tokens over all experts.
 */
function benchWeights(shape: ModelShape, seed: number): LayerWeights {
  const { experts: E, hidden: H, intermediate: I } = shape
  const pool = normalPool(I * H + 3 * E + 3, seed, 0.02)
  const list: ExpertWeights[] = []
  for (let e = 0; e < E; e++) {
    list.push({ gate: pool.subarray(3 * e, 3 * e + I * H), up: pool.subarray(3 * e + 1, 3 * e + 1 + I * H), down: pool.subarray(3 * e + 2, 3 * e + 2 + H * I) })
  }
  return { shape, router: normalPool(E * H, seed + 1, 1 / Math.sqrt(H)), experts: list }
}

const hiddenPool = normalPool(1 << 20, 99, 1)
/** tokens × H hidden states: per-token windows of a seeded normal pool at scattered offsets. */
function benchHidden(tokens: number, H: number): Float32Array {
  const x = new Float32Array(tokens * H)
  const span = hiddenPool.length - H
  for (let t = 0; t < tokens; t++) {
    const off = Math.imul(t + 1, 2654435761) >>> 0
    x.set(hiddenPool.subarray(off % span, (off % span) + H), t * H)
  }
  return x
}

// ---- GPU memory accounting -----------------------------------------------------------------

/** Live and peak bytes of every GPU buffer created in this process (Dawn prototypes patched). */
const gpuMemory = { live: 0, peak: 0, tracked: false }

async function trackGpuMemory(): Promise<void> {
  const { globals } = (await import('webgpu')) as unknown as { globals: Record<string, { prototype: Record<string, unknown> }> }
  const dev = globals.GPUDevice.prototype
  const buf = globals.GPUBuffer.prototype
  const sizes = new Map<object, { size: number; device: object }>()
  const createBuffer = dev.createBuffer as (this: object, d: { size: number }) => object
  const destroyBuffer = buf.destroy as (this: object) => void
  const destroyDevice = dev.destroy as (this: object) => void
  const release = (b: object) => {
    const s = sizes.get(b)
    if (!s) return
    sizes.delete(b)
    gpuMemory.live -= s.size
  }
  dev.createBuffer = function (this: object, d: { size: number }) {
    const b = createBuffer.call(this, d)
    const size = Math.ceil(d.size / 256) * 256
    sizes.set(b, { size, device: this })
    gpuMemory.live += size
    gpuMemory.peak = Math.max(gpuMemory.peak, gpuMemory.live)
    return b
  }
  buf.destroy = function (this: object) {
    release(this)
    return destroyBuffer.call(this)
  }
  dev.destroy = function (this: object) {
    for (const [b, s] of sizes) if (s.device === this) release(b)
    return destroyDevice.call(this)
  }
  gpuMemory.tracked = true
}

// ---- backends ------------------------------------------------------------------------------

async function createBackend(): Promise<Backend> {
  if (backendKind === 'cpu') return createCpuBackend()
  process.env.XDG_RUNTIME_DIR ??= '/tmp'
  const mod = (await import('@moe-route/backend-webgpu')) as Record<string, unknown>
  const factory = (mod.createWebGpuBackend ?? mod.createWebgpuBackend) as ((o?: object) => Promise<Backend> | Backend) | undefined
  if (typeof factory !== 'function') throw new Error('@moe-route/backend-webgpu exports no createWebGpuBackend()')
  // kernel timestamps on; no CPU fallback (a fallback would time the CPU at GPU shapes)
  return await factory({ profile: true, fallback: false })
}

// ---- one side of one setting ---------------------------------------------------------------

interface Point {
  readonly batch: number
  readonly tokens: number
  readonly status: 'ok' | 'predicted-oom' | 'failed'
  readonly error?: string
  readonly gateMs?: number
  readonly dispatchMs?: number
  /** Median wall time of backend.experts (upload, kernels, readback). */
  readonly expertsMs?: number
  readonly kernelMs?: number
  readonly iterations?: number
  /** Backend calls the plan was split into (weight shards × row chunks, see --experts-per-shard, --max-call-gb). */
  readonly calls?: number
  readonly shards?: number
  /** Static side, first batch: relative L2 between its output and dynamic gating's on the tokens it did not drop. */
  readonly parityRelL2?: number
  readonly tokensPerS?: number
  /** Bytes the backend allocated beyond its resident weights while running this point. */
  readonly gpuActivationPeakBytes?: number
  readonly stats?: DispatchStats
  /** Modelled activation bytes of this side on our backend (no dense mask). */
  readonly modelActivationBytes: number
  /** Modelled activation bytes as GShard/fairseq allocate them (dense mask for static). */
  readonly fairseqActivationBytes: number
}

interface Side {
  readonly mode: 'dynamic' | 'static'
  readonly options: Partial<DynamicGatingOptions>
  readonly points: Point[]
  stopped?: string
  weightBytesResident?: number
}

/** One shard of a layer: experts e0 … e1−1 as a layer of their own. */
interface Shard {
  readonly e0: number
  readonly e1: number
  readonly weights: LayerWeights
}

function shardLayer(weights: LayerWeights): Shard[] {
  const { experts: E, hidden: H, intermediate: I } = weights.shape
  const per =
    shardOpt !== 'auto' ? Number(shardOpt) : backendKind === 'cpu' ? E : Math.max(1, Math.min(256, Math.floor((1.5 * 2 ** 30) / (4 * I * H))))
  const shards: Shard[] = []
  for (let e0 = 0; e0 < E; e0 += per) {
    const e1 = Math.min(E, e0 + per)
    shards.push({
      e0,
      e1,
      weights: per >= E ? weights : { shape: { ...weights.shape, experts: e1 - e0 }, router: weights.router.subarray(e0 * H, e1 * H), experts: weights.experts.slice(e0, e1) },
    })
  }
  return shards
}

/** Gate over all shards: T×E logits assembled from each shard's T×E_s columns. */
async function shardedGate(backend: Backend, x: Float32Array, tokens: number, shards: readonly Shard[], experts: number): Promise<Float32Array> {
  if (shards.length === 1) return backend.gate(x, tokens, shards[0].weights)
  const logits = new Float32Array(tokens * experts)
  for (const s of shards) {
    const part = await backend.gate(x, tokens, s.weights)
    const w = s.e1 - s.e0
    for (let t = 0; t < tokens; t++) logits.set(part.subarray(t * w, (t + 1) * w), t * experts + s.e0)
  }
  return logits
}

/** The part of a plan that belongs to one shard, as a plan over the shard's experts. */
function shardPlan(plan: DispatchPlan, s: Shard): DispatchPlan {
  if (s.e0 === 0 && s.e1 === plan.experts) return plan
  const r0 = plan.offsets[s.e0]
  const r1 = plan.offsets[s.e1]
  const offsets = plan.offsets.slice(s.e0, s.e1 + 1).map((o) => o - r0)
  const counts = plan.counts.slice(s.e0, s.e1)
  const real = counts.reduce((a, b) => a + b, 0)
  return { ...plan, experts: s.e1 - s.e0, offsets, counts, rowToken: plan.rowToken.subarray(r0, r1), rowWeight: plan.rowWeight.subarray(r0, r1), paddingRows: r1 - r0 - real, dropped: [] }
}

/** Backend calls for a plan: per shard, then split by rows to fit one binding. */
function planCalls(plan: DispatchPlan, shards: readonly Shard[], maxRows: number): { plan: DispatchPlan; weights: LayerWeights }[] {
  const calls: { plan: DispatchPlan; weights: LayerWeights }[] = []
  for (const s of shards) {
    const p = shardPlan(plan, s)
    if (p.rowToken.length === 0 && shards.length > 1) continue
    for (const chunk of splitPlan(p, maxRows)) calls.push({ plan: chunk, weights: s.weights })
  }
  return calls
}

/**
 * Splits a plan into plans over disjoint expert ranges of at most `maxRows` rows each (an
 * expert bigger than that gets a call of its own). Summing the chunks' outputs gives the
 * plan's output: every row belongs to exactly one chunk.
 */
function splitPlan(plan: DispatchPlan, maxRows: number): DispatchPlan[] {
  const E = plan.experts
  if (plan.rowToken.length <= maxRows) return [plan]
  const out: DispatchPlan[] = []
  let e0 = 0
  while (e0 < E) {
    let e1 = e0 + 1
    while (e1 < E && plan.offsets[e1 + 1] - plan.offsets[e0] <= maxRows) e1++
    const r0 = plan.offsets[e0]
    const r1 = plan.offsets[e1]
    const offsets = new Int32Array(E + 1)
    const counts = new Int32Array(E)
    for (let e = 0; e <= E; e++) offsets[e] = Math.min(Math.max(plan.offsets[e], r0), r1) - r0
    let real = 0
    for (let e = e0; e < e1; e++) {
      counts[e] = plan.counts[e]
      real += counts[e]
    }
    out.push({ ...plan, offsets, counts, rowToken: plan.rowToken.subarray(r0, r1), rowWeight: plan.rowWeight.subarray(r0, r1), paddingRows: r1 - r0 - real, dropped: [] })
    e0 = e1
  }
  return out
}

/** Runs a plan's calls; returns the summed output, the summed wall ms of the calls and kernel ms. */
async function runExperts(backend: Backend, x: Float32Array, calls: readonly { plan: DispatchPlan; weights: LayerWeights }[]): Promise<{ output: Float32Array; ms: number; kernelMs?: number }> {
  let ms = 0
  let kernelMs: number | undefined
  let output: Float32Array | undefined
  for (const call of calls) {
    const t0 = now()
    const res = await backend.experts(x, call.plan, call.weights)
    ms += now() - t0
    if (res.kernels) kernelMs = (kernelMs ?? 0) + Object.values(res.kernels).reduce((a, b) => a + b, 0)
    if (!output) output = res.output
    else for (let i = 0; i < output.length; i++) output[i] += res.output[i]
  }
  return { output: output ?? new Float32Array(x.length), ms, ...(kernelMs !== undefined ? { kernelMs } : {}) }
}

/** Dynamic gating's output at the first batch of each setting, to check static gating against. */
const reference = new Map<string, { batch: number; output: Float32Array }>()

/** ‖a − b‖ / ‖b‖ over the rows of `tokens`. */
function relL2Rows(a: Float32Array, b: Float32Array, tokens: readonly number[], H: number): number {
  let num = 0
  let den = 0
  for (const t of tokens) {
    for (let h = t * H; h < (t + 1) * H; h++) {
      num += (a[h] - b[h]) ** 2
      den += b[h] ** 2
    }
  }
  return den === 0 ? Math.sqrt(num) : Math.sqrt(num / den)
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const now = () => performance.now()
const gb = (b: number) => (b / 2 ** 30).toFixed(2)
/** Bytes with a readable unit. */
const fmtBytes = (b: number) => (b >= 2 ** 30 ? `${(b / 2 ** 30).toFixed(2)} GiB` : b >= 2 ** 20 ? `${(b / 2 ** 20).toFixed(1)} MiB` : `${(b / 1024).toFixed(1)} KiB`)

/**
 * One side (mode) for settings that share a shape: one backend, one weight upload, then every
 * setting's batch sweep. A fresh backend per side keeps one side's pooled buffers out of the
 * other side's memory numbers.
 */
async function runSide(group: readonly Setting[], mode: 'dynamic' | 'static', weights: LayerWeights, deadlineOf: (s: Setting) => number): Promise<{ sides: Side[]; adapter: string }> {
  const shape = group[0].shape
  const backend = await createBackend()
  let adapter = ''
  const sides: Side[] = []
  try {
    // warm-up: one token, uploads the weights and compiles the pipelines
    // (every shard once: a token routed to all experts of the shard)
    const x1 = benchHidden(1, shape.hidden)
    const shards = shardLayer(weights)
    for (const sh of shards) {
      const n = sh.e1 - sh.e0
      const warm: DispatchPlan = { mode: 'dynamic', tokens: 1, experts: n, offsets: Int32Array.from({ length: n + 1 }, (_, e) => e), counts: new Int32Array(n).fill(1), rowToken: new Int32Array(n), rowWeight: new Float32Array(n).fill(1 / n), capacity: null, paddingRows: 0, dropped: [], traffic: { devices: 1, sendRows: new Int32Array([n]), bytesCrossDevice: 0 } }
      await backend.gate(x1, 1, sh.weights)
      await backend.experts(x1, warm, sh.weights)
    }
    const resident = gpuMemory.tracked ? gpuMemory.live : undefined
    adapter = String(backend.info().adapter ?? backend.info().name)
    for (const setting of group) sides.push(await runSetting(backend, setting, mode, shards, resident, deadlineOf(setting)))
  } finally {
    await backend.dispose?.()
  }
  return { sides, adapter }
}

async function runSetting(backend: Backend, setting: Setting, mode: 'dynamic' | 'static', shards: readonly Shard[], resident: number | undefined, deadline: number): Promise<Side> {
  const { shape } = setting
  const options: Partial<DynamicGatingOptions> = mode === 'dynamic' ? { mode } : { mode, ...setting.staticOptions }
  const side: Side = { mode, options, points: [], ...(resident !== undefined ? { weightBytesResident: resident } : {}) }
  const dispatcher = createDynamicGating(options)
  const ctx = { placement: contiguousPlacement(shape.experts, 1), bytesPerToken: shape.hidden * BYTES_PER_ELEMENT }
  const weightBytes = shape.experts * 3 * shape.hidden * shape.intermediate * BYTES_PER_ELEMENT + shape.experts * shape.hidden * BYTES_PER_ELEMENT
  {
    for (const batch of batches) {
      const tokens = batch * setting.seqLen
      const x = benchHidden(tokens, shape.hidden)
      const g0 = now()
      const logits = await shardedGate(backend, x, tokens, shards, shape.experts)
      const gateMs = now() - g0
      const routing = softmaxTopK({ tokens, experts: shape.experts, logits }, shape.topK, false)
      const d0 = now()
      const plan = dispatcher.dispatch(routing, ctx)
      const dispatchMs = now() - d0
      const statsOptions = { hidden: shape.hidden, bytesPerElement: BYTES_PER_ELEMENT, intermediate: shape.intermediate }
      const model = dispatchStats(plan, statsOptions).memory
      const io = 2 * tokens * shape.hidden * BYTES_PER_ELEMENT
      const modelActivationBytes = model.totalBytes - model.dispatchMaskBytes + io
      const fairseqActivationBytes = model.totalBytes + io
      const base = { batch, tokens, modelActivationBytes, fairseqActivationBytes }
      if (backendKind === 'webgpu' && modelActivationBytes + weightBytes > gpuMemoryBytes) {
        side.points.push({ ...base, status: 'predicted-oom', stats: dispatchStats(plan, statsOptions) })
        side.stopped = `batch ${batch}: needs ${gb(modelActivationBytes)} GiB of activations next to ${gb(weightBytes)} GiB of weights (> ${gb(gpuMemoryBytes)} GiB)`
        break
      }
      const chunks = planCalls(plan, shards, Math.max(1, Math.floor(maxCallBytes / (BYTES_PER_ELEMENT * Math.max(shape.intermediate, shape.hidden)))))
      const times: number[] = []
      const kernels: number[] = []
      let activationPeak: number | undefined
      let parityRelL2: number | undefined
      try {
        for (let i = 0; i <= iters; i++) {
          gpuMemory.peak = gpuMemory.live
          const res = await runExperts(backend, x, chunks)
          const ms = res.ms
          if (i === 0) activationPeak = gpuMemory.tracked && side.weightBytesResident !== undefined ? gpuMemory.peak - side.weightBytesResident : undefined
          if (res.kernelMs !== undefined) kernels.push(res.kernelMs)
          if (i === 0 && batch === batches[0]) {
            const ref = reference.get(setting.name)
            if (mode === 'dynamic') reference.set(setting.name, { batch, output: res.output })
            else if (ref && ref.batch === batch) {
              const hit = new Set(plan.dropped.map((d) => d.token))
              const clean = Array.from({ length: tokens }, (_, t) => t).filter((t) => !hit.has(t))
              parityRelL2 = relL2Rows(res.output, ref.output, clean, shape.hidden)
            }
          }
          // the first call allocates buffers of the new size; time it only when it is the only one
          if (i > 0 || ms > maxPointS * 1000) times.push(ms)
          if (ms > maxPointS * 1000) break
        }
      } catch (e) {
        side.points.push({ ...base, status: 'failed', error: (e as Error).message.slice(0, 300), gateMs, dispatchMs })
        side.stopped = `batch ${batch}: ${(e as Error).message.slice(0, 120)}`
        break
      }
      const expertsMs = median(times)
      const kernelMs = kernels.length ? median(kernels) : undefined
      side.points.push({
        ...base,
        status: 'ok',
        gateMs,
        dispatchMs,
        expertsMs,
        ...(kernelMs !== undefined ? { kernelMs } : {}),
        iterations: times.length,
        calls: chunks.length,
        shards: shards.length,
        ...(parityRelL2 !== undefined ? { parityRelL2 } : {}),
        tokensPerS: tokens / ((dispatchMs + expertsMs) / 1000),
        ...(activationPeak !== undefined ? { gpuActivationPeakBytes: activationPeak } : {}),
        stats: dispatchStats(plan, { ...statsOptions, ...(kernelMs !== undefined ? { kernels: { experts: kernelMs } } : {}) }),
      })
      const last = side.points[side.points.length - 1]
      console.log(
        `  ${setting.name.padEnd(10)} ${mode.padEnd(7)} B=${String(batch).padStart(4)} S=${String(tokens).padStart(6)}  ` +
          `slots=${String(last.stats!.slotsComputed).padStart(8)} waste=${last.stats!.wasteFactor.toFixed(1).padStart(5)}× drop=${last.stats!.droppedPairs}  ` +
          `dispatch ${dispatchMs.toFixed(1)} ms  experts ${expertsMs.toFixed(1)} ms${kernelMs !== undefined ? ` (kernels ${kernelMs.toFixed(1)})` : ''}  ` +
          `${chunks.length > 1 ? `${chunks.length} calls  ` : ''}${parityRelL2 !== undefined ? `parity ${parityRelL2.toExponential(1)}  ` : ''}${Math.round(last.tokensPerS!)} tok/s  activations ${fmtBytes(activationPeak ?? modelActivationBytes)}${activationPeak === undefined ? ' (model)' : ' (allocated)'}`,
      )
      if (times.length === 1 && times[0] > maxPointS * 1000) {
        side.stopped = `batch ${batch}: one call took ${(times[0] / 1000).toFixed(1)} s (> --max-point-s ${maxPointS})`
        break
      }
      if (now() > deadline) {
        side.stopped = `time budget of ${timeBudgetS} s for the setting spent after batch ${batch}`
        break
      }
    }
  }
  return side
}

// ---- summary -------------------------------------------------------------------------------

function summarise(setting: Setting, dyn: Side, sta: Side) {
  const ok = (s: Side) => s.points.filter((p) => p.status === 'ok')
  const best = (s: Side) => Math.max(0, ...ok(s).map((p) => p.tokensPerS!))
  const perBatch = ok(dyn)
    .map((d) => ({ d, s: ok(sta).find((p) => p.batch === d.batch) }))
    .filter((x) => x.s)
    .map(({ d, s }) => ({ batch: d.batch, speedup: d.tokensPerS! / s!.tokensPerS!, slotsRatio: s!.stats!.slotsComputed / d.stats!.slotsComputed }))
  const largest = (s: Side) => Math.max(0, ...ok(s).map((p) => p.batch))
  const at = (s: Side, b: number) => s.points.find((p) => p.batch === b)
  const first = batches[0]
  /** Largest batch (of the sweep, extrapolated linearly in tokens) whose fairseq-model memory fits. */
  const fairseqFit = (s: Side) => {
    const p = s.points[0]
    if (!p) return 0
    const weightBytes = setting.shape.experts * 3 * setting.shape.hidden * setting.shape.intermediate * BYTES_PER_ELEMENT
    let fit = 0
    for (const b of batches) {
      const scale = b / p.batch
      // dense mask grows with S², buffers with S
      const mask = p.stats ? p.stats.memory.dispatchMaskBytes * scale * scale : 0
      if ((p.fairseqActivationBytes - (p.stats?.memory.dispatchMaskBytes ?? 0)) * scale + mask + weightBytes <= gpuMemoryBytes) fit = b
    }
    return fit
  }
  return {
    setting: setting.name,
    bestTokensPerS: { dynamic: best(dyn), static: best(sta) },
    maxThroughputGain: best(sta) > 0 ? best(dyn) / best(sta) : null,
    perBatch,
    largestBatchRun: { dynamic: largest(dyn), static: largest(sta) },
    firstBatch: first,
    activationBytesAtFirstBatch: {
      measured: { dynamic: at(dyn, first)?.gpuActivationPeakBytes ?? null, static: at(sta, first)?.gpuActivationPeakBytes ?? null },
      model: { dynamic: at(dyn, first)?.modelActivationBytes ?? null, static: at(sta, first)?.modelActivationBytes ?? null },
      fairseqModel: { dynamic: at(dyn, first)?.fairseqActivationBytes ?? null, static: at(sta, first)?.fairseqActivationBytes ?? null },
    },
    fairseqModelLargestBatch: { dynamic: fairseqFit(dyn), static: fairseqFit(sta) },
    /** Static vs dynamic output on the tokens static gating kept (first batch), relative L2. */
    parityRelL2: at(sta, first)?.parityRelL2 ?? null,
    paper: setting.paper,
  }
}

// ---- main ----------------------------------------------------------------------------------

async function main() {
  if (backendKind === 'webgpu') await trackGpuMemory().catch(() => undefined)
  const started = new Date().toISOString()
  const results: unknown[] = []
  const summaries: ReturnType<typeof summarise>[] = []
  let adapter = ''
  console.log(`dynamic-gating bench: preset ${preset}, backend ${backendKind}, batches ${batches.join(',')}, ${iters} timed iterations, f32 activations`)
  // settings that share a shape share one backend (and one weight upload) per side
  const groups = new Map<string, Setting[]>()
  for (const s of settings) groups.set(JSON.stringify(s.shape), [...(groups.get(JSON.stringify(s.shape)) ?? []), s])
  for (const group of groups.values()) {
    for (const setting of group) {
      const { shape } = setting
      console.log(
        `${setting.name}: E=${shape.experts} k=${shape.topK} H=${shape.hidden} I=${shape.intermediate} seq=${setting.seqLen} ` +
          `static ${JSON.stringify(setting.staticOptions)}  (paper: ${setting.paper})`,
      )
    }
    const weights = benchWeights(group[0].shape, 7)
    // each side of each setting gets half the setting's time budget, counted from its start
    const deadline = () => now() + (timeBudgetS * 1000) / 2
    const dyn = await runSide(group, 'dynamic', weights, deadline)
    const sta = await runSide(group, 'static', weights, deadline)
    adapter = dyn.adapter
    group.forEach((setting, i) => {
      const d = dyn.sides[i]
      const st = sta.sides[i]
      for (const s of [d, st]) if (s.stopped) console.log(`  ${setting.name} ${s.mode} stopped: ${s.stopped}`)
      const summary = summarise(setting, d, st)
      summaries.push(summary)
      console.log(
        `  ${setting.name} → best ${Math.round(summary.bestTokensPerS.dynamic)} vs ${Math.round(summary.bestTokensPerS.static)} tok/s ` +
          `(max-throughput gain ${summary.maxThroughputGain?.toFixed(2) ?? 'n/a'}×); per batch ${summary.perBatch.map((p) => `B${p.batch} ${p.speedup.toFixed(2)}×`).join(', ')}; ` +
          `largest batch run ${summary.largestBatchRun.dynamic} vs ${summary.largestBatchRun.static}`,
      )
      results.push({ setting: setting.name, shape: setting.shape, seqLen: setting.seqLen, staticOptions: setting.staticOptions, dynamic: d, static: st })
    })
  }
  console.log(`\nadapter: ${adapter}`)
  mkdirSync(outDir, { recursive: true })
  const file = join(outDir, `dynamic-gating${preset === 'paper' ? '' : `-${preset}`}-${backendKind}.json`)
  writeFileSync(
    file,
    JSON.stringify(
      { bench: 'dynamic-gating', started, finished: new Date().toISOString(), preset, backend: backendKind, adapter, node: process.version, args: argv, bytesPerElement: BYTES_PER_ELEMENT, gpuMemoryTracked: gpuMemory.tracked, summaries, results },
      null,
      1,
    ),
  )
  console.log(`wrote ${file}`)
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e)
    process.exit(1)
  },
)
