/**
 * The configured layer on the GPU (issue 14): what a user's config runs, measured the way the
 * fused benchmark is, on one GPU in one command.
 *
 * Shape: Mixtral-8x7B (H 4096, I 14336, E 8, k 2, renormalised top-2) or OLMoE-1B-7B; config:
 * softmax-top-k → capacity-drop γ 1.0 (score priority) → exact-size dispatch, f16 weights
 * generated on the device from normal(0, 0.02), x ~ normal(0, 1) generated on the device.
 * Per T:
 * - `submitMs`: the pipeline's kernels submitted back to back with one wait at the end
 *   (`pipeline.submit`: the same code path as every batch, no readback): the fused figure;
 * - `steadyMs`: the configured run's steady state, `engine.forward` with `maxInFlight` batches
 *   in flight through a TokenStream, reading back each batch's telemetry (and output norm)
 *   only, wall time per batch after a warm-up;
 * - `syncMs`: one synchronous call with its readback — host hidden states uploaded, the whole
 *   output read back — awaited before the next (the latency of one call);
 * - `stages`: per-stage device times of a profiled engine (timestamp queries; median of 5).
 * Also: startup (engine created → weights on the device, stages compiled → first batch out),
 * the host round trip of a third-party policy without a GPU lowering (examples/custom-policy's
 * entropy-drop), and an expert buffer holding 4 of 8 Mixtral experts under LIFO and LRU on
 * recorded Mixtral decode routing.
 *
 * Usage: node .gpu/pipeline.bench.mjs [--out dir] [--tokens 1,8,32,512] [--tiny] [--in-flight 4]
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { TokenStream, createMoe, createRegistry, type LayerSummary, type MoeConfig, type Plugin, type TokenBatch } from '@moe-route/core'
import webgpuBackend from '@moe-route/backend-webgpu'
import capacityDrop from '@moe-route/policy-capacity/capacity-drop'
import expertBuffer from '@moe-route/policy-expert-buffer'
import entropyDrop from 'moe-route-policy-entropy-drop'
import { openWorkloadSpec } from './lib/workload.js'
import { withSyntheticHidden } from '@moe-route/workloads'

const args = process.argv.slice(2)
const flag = (name: string) => args.includes(name)
const opt = (name: string, def: string) => {
  const i = args.indexOf(name)
  return i >= 0 && args[i + 1] ? args[i + 1] : def
}
const outDir = opt('--out', 'bench/results')
const tiny = flag('--tiny')
const inFlight = Number(opt('--in-flight', '4'))
const TOKENS = opt('--tokens', tiny ? '1,8,32' : '1,8,32,512').split(',').map(Number)
const MIXTRAL = tiny
  ? { name: 'tiny', experts: 8, topK: 2, hidden: 64, intermediate: 128, normalizeTopK: true }
  : { name: 'mixtral-8x7b', experts: 8, topK: 2, hidden: 4096, intermediate: 14336, normalizeTopK: true }
const plugins: Plugin[] = [webgpuBackend, capacityDrop, expertBuffer, entropyDrop as unknown as Plugin]
const dawnFlags = ['disable-dawn-features=timestamp_quantization']

const config = (extra: Partial<MoeConfig> = {}, backendOptions: Record<string, unknown> = {}): MoeConfig => ({
  model: MIXTRAL,
  policies: [{ use: 'capacity-drop', options: { capacityFactor: 1.0 } }],
  backend: { use: 'webgpu', options: { weightsDtype: 'f16', powerPreference: 'high-performance', dawnFlags, ...backendOptions } },
  weights: { seed: 1, std: 0.02 },
  seed: 1,
  ...extra,
})
const engineFor = (extra: Partial<MoeConfig> = {}, backendOptions: Record<string, unknown> = {}) => createMoe({ config: config(extra, backendOptions), registry: createRegistry(plugins) })
type Engine = ReturnType<typeof engineFor>

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]
const log = (o: Record<string, unknown>) => console.log(JSON.stringify(o))

/** A batch with hidden states made on the device (or, for sync calls, on the host). */
async function batchOf(engine: Engine, id: number, T: number, where: 'device' | 'host', extra: Partial<TokenBatch> = {}): Promise<TokenBatch> {
  const b = await withSyntheticHidden({ id, tokens: T }, { hidden: MIXTRAL.hidden, seed: 1, ...(where === 'device' ? { backend: engine.backend! } : {}) })
  return { ...b, ...extra }
}

/** The hidden states both timings cycle through: 8 batches made on the device, so submit and steady run the same inputs. */
async function ringOf(engine: Engine, T: number): Promise<TokenBatch[]> {
  return Promise.all(Array.from({ length: 8 }, (_, i) => batchOf(engine, i, T, 'device')))
}

/** ms per batch of `n` submits back to back over `ring`, one wait at the end (after a time-based warm-up). */
async function submitMs(engine: Engine, ring: TokenBatch[], n: number): Promise<number> {
  const pipeline = (await engine.pipeline()) as unknown as { submit(b: TokenBatch): Promise<void> }
  const device = ((await (engine.backend as unknown as { layer(): Promise<{ ctx: { device: GPUDevice } }> }).layer()).ctx.device)
  const run = async (count: number) => {
    for (let i = 0; i < count; i++) await pipeline.submit({ ...ring[i % ring.length], id: i })
    await device.queue.onSubmittedWorkDone()
  }
  const w0 = performance.now()
  while (performance.now() - w0 < 500) await run(8)
  const t0 = performance.now()
  await run(n)
  return (performance.now() - t0) / n
}

/**
 * Steady-state wall ms per batch with `inFlight` batches in flight (telemetry and the output
 * norm read back per batch). Hidden states come from a ring of 8 made on the device beforehand,
 * as `submitMs` reuses its 4 (a serving loop gets them from the previous layer, on the device).
 */
async function steadyMs(engine: Engine, T: number, n: number, extra: (i: number) => Partial<TokenBatch> = () => ({}), given?: TokenBatch[]): Promise<{ ms: number; last: LayerSummary[] }> {
  const results: LayerSummary[] = []
  const ring = given ?? (await ringOf(engine, T))
  const stream = new TokenStream<LayerSummary>(engine, { maxInFlight: inFlight, capacity: inFlight * 2, forward: { detail: 'telemetry', output: 'norm' } })
  const warm = 8
  const producer = (async () => {
    for (let i = 0; i < n + warm; i++) await stream.write({ ...ring[i % ring.length], id: i, ...extra(i) })
    stream.end()
  })()
  producer.catch((e) => stream.abort(e))
  let t0 = 0
  let count = 0
  for await (const r of stream) {
    count++
    if (count === warm) t0 = performance.now()
    if (count > warm) results.push(r)
  }
  await producer
  if (!given) for (const b of ring) b.deviceHidden?.release()
  return { ms: (performance.now() - t0) / n, last: results }
}

/** ms of one synchronous call: host hidden states up, whole output back, awaited. */
async function syncMs(engine: Engine, T: number, n: number): Promise<number> {
  const times: number[] = []
  for (let i = 0; i < n + 3; i++) {
    const b = await batchOf(engine, i, T, 'host')
    const t0 = performance.now()
    await engine.forward(b, { detail: 'telemetry', output: 'host' })
    if (i >= 3) times.push(performance.now() - t0)
  }
  return median(times)
}

const iters = (T: number) => Math.max(20, Math.min(200, Math.ceil(4000 / T)))
const rows: Record<string, unknown>[] = []
const result: Record<string, unknown> = { bench: 'pipeline', date: new Date().toISOString(), shape: MIXTRAL, inFlight, config: config(), rows }

// startup: the engine created, weights made on the device, every stage compiled, first batch out
{
  const t0 = performance.now()
  const engine = engineFor()
  const stages = await engine.ready()
  const tReady = performance.now() - t0
  const first = await engine.forward(await batchOf(engine, 0, 1, 'device'), { detail: 'telemetry', output: 'norm' })
  const startupMs = performance.now() - t0
  const info = engine.backend!.info()
  result.adapter = info.adapter
  result.startup = { readyMs: tReady, firstBatchOutMs: startupMs, rssMiB: process.memoryUsage().rss / 2 ** 20, stages, firstOutputNorm: first.outputNorm }
  log({ startup: result.startup, adapter: info.adapter })
  for (const T of TOKENS) {
    const n = iters(T)
    const ring = await ringOf(engine, T)
    const sub = await submitMs(engine, ring, n)
    const steady = await steadyMs(engine, T, n, () => ({}), ring)
    for (const b of ring) b.deviceHidden?.release()
    const sync = await syncMs(engine, T, Math.min(20, n))
    const t = steady.last.at(-1)!.telemetry
    const row = { T, submitMs: sub, steadyMs: steady.ms, ratio: steady.ms / sub, syncMs: sync, iters: n, droppedFraction: t.droppedFraction, loadAfter: t.loadAfter, hostRoundTrips: t.hostRoundTrips ?? {} }
    rows.push(row)
    log(row)
  }
  result.rssAfterMiB = process.memoryUsage().rss / 2 ** 20
  await engine.dispose()
}

// per-stage device times (a profiled engine: every kernel in its own timed pass)
{
  const engine = engineFor({}, { profile: true })
  await engine.ready()
  const stages: Record<string, unknown>[] = []
  for (const T of TOKENS) {
    const per = new Map<string, number[]>()
    for (let i = 0; i < 7; i++) {
      const r = await engine.forward(await batchOf(engine, i, T, 'device'), { detail: 'telemetry', output: 'norm' })
      if (i < 2) continue
      for (const s of r.telemetry.timings.stages ?? []) if (s.ms !== null) per.set(s.stage, [...(per.get(s.stage) ?? []), s.ms])
    }
    const row = { T, stages: Object.fromEntries([...per].map(([k, v]) => [k, median(v)])), sumMs: [...per.values()].reduce((a, v) => a + median(v), 0) }
    stages.push(row)
    log({ profiled: row })
  }
  result.profiled = stages
  await engine.dispose()
}

// a third-party policy without a GPU lowering: one host round trip per batch
{
  const custom: Record<string, unknown>[] = []
  for (const T of TOKENS.filter((t) => t <= 32)) {
    const base = engineFor()
    const withHost = engineFor({ policies: [{ use: 'entropy-drop', options: { capacityFactor: 1.0 } }] })
    await base.ready()
    const where = await withHost.ready()
    const n = iters(T)
    const a = await steadyMs(base, T, n)
    const b = await steadyMs(withHost, T, n)
    const syncA = await syncMs(base, T, 10)
    const syncB = await syncMs(withHost, T, 10)
    const row = { T, stages: where, capacityDropMs: a.ms, hostPolicyMs: b.ms, roundTripMs: b.ms - a.ms, syncCapacityDropMs: syncA, syncHostPolicyMs: syncB, hostRoundTrips: b.last.at(-1)!.telemetry.hostRoundTrips }
    custom.push(row)
    log({ customPolicy: row })
    await base.dispose()
    await withHost.dispose()
  }
  result.customPolicy = custom
}

// expert buffer: 4 of 8 experts on the device, decode on recorded Mixtral routing (C4, layer 7)
{
  const store: Record<string, unknown>[] = []
  const routing = await openWorkloadSpec('mixtral:c4:layer7', 1, tiny ? 32 : 200)
  for (const eviction of ['lifo', 'lru']) {
    const engine = engineFor({ policies: [], store: { use: 'expert-buffer', options: { slots: 4, eviction } } })
    await engine.ready()
    const per: { ms: number; hits: number; misses: number; bytes: number; uploadMs: number }[] = []
    for (let i = 0; i < routing.length; i++) {
      const b = await batchOf(engine, i, 1, 'device', { scores: routing[i].scores })
      const t0 = performance.now()
      const r = await engine.forward(b, { detail: 'telemetry', output: 'norm' })
      const s = r.telemetry.store!
      per.push({ ms: performance.now() - t0, hits: s.hits, misses: s.misses, bytes: s.bytesUploaded, uploadMs: s.uploadMs })
    }
    const steps = per.slice(5)
    const hits = steps.reduce((a, p) => a + p.hits, 0)
    const misses = steps.reduce((a, p) => a + p.misses, 0)
    const row = {
      eviction,
      steps: steps.length,
      hitRate: hits / Math.max(1, hits + misses),
      missesPerStep: misses / steps.length,
      p50StepMs: median(steps.map((p) => p.ms)),
      p50HitStepMs: steps.some((p) => p.misses === 0) ? median(steps.filter((p) => p.misses === 0).map((p) => p.ms)) : null,
      p50MissStepMs: steps.some((p) => p.misses > 0) ? median(steps.filter((p) => p.misses > 0).map((p) => p.ms)) : null,
      meanBytesPerStep: steps.reduce((a, p) => a + p.bytes, 0) / steps.length,
      p50UploadMs: median(steps.map((p) => p.uploadMs)),
    }
    store.push(row)
    log({ expertBuffer: row })
    await engine.dispose()
  }
  result.expertBuffer = store
}

mkdirSync(outDir, { recursive: true })
writeFileSync(join(outDir, `pipeline${tiny ? '-tiny' : ''}.json`), JSON.stringify(result, null, 2))
console.log('wrote pipeline')
process.exit(0)
