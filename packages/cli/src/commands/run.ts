/** `moe-route run`: the main job — a stream of batches through the configured layer. */
import { TelemetryAggregate, TokenStream, createMoe, l2Norm, weightSourceOf, type BatchTelemetry, type LayerSummary, type MoeConfig, type PipelineStageInfo, type StageTiming, type TokenBatch } from '@moe-route/core'
import { Option, type Command } from 'commander'
import { loadConfig } from '../config-loader.js'
import type { CliContext } from '../context.js'
import { intOption } from '../context.js'
import { importOptional } from '../optional.js'
import { createProgress } from '../progress.js'
import { fmt, loadHistogram, pct } from '../report.js'
import { openWorkload } from '../workload-source.js'
import { MAX_TOKENS_PER_BATCH, MAX_IN_FLIGHT } from '@moe-route/core'
import { DEFAULT_WORKLOAD, withSyntheticHidden } from '@moe-route/workloads'

interface RunFlags {
  config?: string
  json?: boolean
  backend?: string
  batches?: string
  tokens?: string
  progress?: boolean
  inFlight?: string
  metricsPort?: string
  metricsHost?: string
}

/** Registers `run`. */
export function register(program: Command, ctx: CliContext): void {
  program
    .command('run')
    .description('run the MoE layer over a stream of batches (default: the embedded Mixtral-shaped workload) and report')
    .option('-c, --config <file>', 'config file (default: the embedded default)')
    .option('--json', 'print the report as JSON')
    .addOption(new Option('--backend <name>', 'override the config backend').choices(['cpu', 'webgpu']))
    .option('--batches <n>', 'override workload.batches')
    .option('--tokens <n>', 'override workload.tokensPerBatch')
    .option('--in-flight <n>', 'batches in flight (default: stream.maxInFlight, else 4 on a GPU backend, 1 on the CPU)')
    .option('--metrics-port <n>', 'serve Prometheus metrics at http://HOST:N/metrics while the run lasts (needs @moe-route/telemetry; 0 picks a free port)')
    .option('--metrics-host <addr>', 'address of the metrics server', '127.0.0.1')
    .option('--no-progress', 'no progress bar')
    .action(async (flags: RunFlags) => {
      const report = await runJob(flags, ctx)
      ctx.out(flags.json ? JSON.stringify(report, null, 2) : renderRun(report))
    })
}

/** The JSON report of `run` (also what --json prints). */
export interface RunReport {
  config: string
  backend: { name: string; adapter?: string }
  shape: { name?: string; experts: number; topK: number; hidden: number; intermediate: number; normalizeTopK: boolean }
  workload: { source: string; description: string; batches: number; tokensPerBatch: number; seed: number }
  policies: { use: string; options?: Record<string, unknown> }[]
  dispatcher: string
  storePlugin?: string
  batches: number
  tokens: number
  seconds: number
  tokensPerSecond: number
  timingsMs: { routing: number; policies: number; dispatch: number; store: number; experts: number; total: number }
  /**
   * The device pipeline (GPU backends): where each stage ran, each stage's median time per
   * batch (device kernel time when the backend profiles, host wall time for host stages),
   * host round trips, the first batch's latency from the start (weights and shader
   * compilation included), and the steady-state wall time per batch with batches in flight.
   */
  pipeline?: {
    stages: (PipelineStageInfo & { medianMs: number | null })[]
    hostRoundTrips: Record<string, number>
    startupMs: number
    msPerBatch: number
    inFlight: number
  }
  load: { before: number[]; after: number[] }
  maxMeanLoad: { before: { mean: number; worst: number }; after: { mean: number; worst: number } }
  pairs: number
  droppedPairs: number
  droppedFraction: number
  reroutedPairs: number
  addedPairs: number
  gateMassKept: number
  tokensFullyDropped: number
  /**
   * The dispatcher over all batches: slots computed (padding included), padding rows, waste
   * factor (slots ÷ pairs asked of it), pairs it dropped on overflow (null where the backend does
   * not count them), payload bytes crossing devices, largest per-expert capacity (null: exact).
   */
  dispatch: { mode: string; slots: number; paddingRows: number; wasteFactor: number; droppedPairs: number | null; bytesCrossDevice: number; capacity: number | null }
  /** The expert store over all batches, when one is configured. */
  store?: { hits: number; misses: number; hitRate: number; evictions: number; bytesUploaded: number; uploadMs: number }
  /** Where Prometheus metrics were served during the run (`--metrics-port`). */
  metrics?: { url: string }
  fallbacks: number
  /** L2 norm of the whole output and of each batch's (compare runs with `moe-route compare`). */
  output: { l2Norm: number; batchNorms: number[] }
}

/** Runs the job and returns its report. */
export async function runJob(flags: RunFlags, ctx: CliContext): Promise<RunReport> {
  const batchesOverride = intOption(flags.batches, '--batches', 1)
  const tokensOverride = intOption(flags.tokens, '--tokens', 1, MAX_TOKENS_PER_BATCH)
  const loaded = await loadConfig(flags.config, ctx.cwd, (raw): MoeConfig => ({
    ...raw,
    ...(flags.backend ? { backend: { use: flags.backend } } : {}),
    // the overrides apply to the default workload too when the config names none
    ...(batchesOverride || tokensOverride
      ? { workload: { ...(raw.workload ?? { source: DEFAULT_WORKLOAD }), ...(batchesOverride ? { batches: batchesOverride } : {}), ...(tokensOverride ? { tokensPerBatch: tokensOverride } : {}) } }
      : {}),
  }), { ...ctx.security, purpose: 'run' })
  const { config, registry } = loaded
  const model = config.model
  const t0 = performance.now()
  // weights come from config.weights (seeded, or a safetensors file): a GPU backend makes them
  // on the device, the CPU backend on the host
  // (a config without a weights section runs seeded normal(0, 0.02) weights, seed = config.seed)
  const engine = createMoe({ config, registry, source: loaded.source, weights: weightSourceOf(config) ?? { kind: 'seeded', seed: config.seed, std: 0.02 } })
  const workload = await openWorkload(config, ctx.cwd)
  let info = engine.backend?.info() ?? { name: 'none' }
  const device = engine.usesDevicePipeline
  const inFlight = intOption(flags.inFlight, '--in-flight', 1, MAX_IN_FLIGHT) ?? config.stream?.maxInFlight ?? (device ? 4 : 1)
  const agg = new TelemetryAggregate()
  const stream = new TokenStream<LayerSummary>(engine, {
    maxInFlight: inFlight,
    capacity: Math.max(inFlight, config.stream?.capacity ?? 4),
    // nothing but telemetry and the output's norm comes back from the device
    forward: { detail: 'telemetry', output: 'norm' },
  })
  const metricsPort = intOption(flags.metricsPort, '--metrics-port', 0)
  const metrics = metricsPort === undefined ? null : await serveRunMetrics(stream, metricsPort, flags.metricsHost ?? '127.0.0.1', engine)
  if (metrics && !flags.json) ctx.err(`serving metrics at ${metrics.url}`)
  const progress = createProgress(ctx, flags.progress !== false && !flags.json, workload.batches, 'batches')
  const batchNorms: number[] = []
  const timings = { routing: 0, policies: 0, dispatch: 0, store: 0, experts: 0, total: 0 }
  const stageMs = new Map<string, number[]>()
  const roundTrips: Record<string, number> = {}
  let firstOut = 0
  let lastOut = 0
  // synthetic hidden states (workloads): made on the device where the layer runs there
  const hiddenOf = (b: TokenBatch): Promise<TokenBatch> => withSyntheticHidden(b, { hidden: model.hidden, seed: config.seed, ...(device && engine.backend ? { backend: engine.backend } : {}) })
  const stages = await engine.ready()
  const producer = (async () => {
    try {
      for await (const b of workload.source) {
        // with a metrics server, let the event loop turn between batches so scrapes are answered
        // mid-run (a CPU batch settles in microtasks only)
        if (metrics) await new Promise((r) => setImmediate(r))
        await stream.write(await hiddenOf(b as TokenBatch))
      }
    } finally {
      stream.end()
    }
  })()
  // A failed batch makes the producer's next write reject (the consumer below reports that
  // failure); a producer that fails on its own (workload, hidden states) fails the stream.
  producer.catch((e) => stream.abort(e))
  try {
    for await (const r of stream) {
      lastOut = performance.now()
      if (firstOut === 0) firstOut = lastOut
      const t: BatchTelemetry = r.telemetry
      agg.add(t)
      timings.routing += t.timings.routeMs + t.timings.gateMs
      timings.policies += t.timings.policiesMs
      timings.dispatch += t.timings.dispatchMs
      timings.store += t.timings.storeMs
      timings.experts += t.timings.expertsMs
      timings.total += t.timings.totalMs
      for (const st of t.timings.stages ?? ([] as StageTiming[])) {
        if (st.ms === null) continue
        let list = stageMs.get(st.stage)
        if (!list) stageMs.set(st.stage, (list = []))
        list.push(st.ms)
      }
      for (const [k, n] of Object.entries(t.hostRoundTrips ?? {})) roundTrips[k] = (roundTrips[k] ?? 0) + n
      if (r.outputNorm !== undefined) batchNorms.push(r.outputNorm)
      progress.tick(1, { tokens: agg.tokens })
    }
    await producer
  } finally {
    progress.stop()
    // Read after the run: a GPU backend names its adapter once it has acquired the device.
    info = engine.backend?.info() ?? info
    await engine.dispose()
    await metrics?.close()
  }
  const median = (v: number[] | undefined) => (v && v.length ? [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)] : null)
  const seconds = (performance.now() - t0) / 1000
  const s = agg.summary()
  return {
    config: loaded.source,
    backend: { name: info.name, ...(info.adapter ? { adapter: String(info.adapter) } : {}) },
    shape: { ...(model.name ? { name: model.name } : {}), experts: model.experts, topK: model.topK, hidden: model.hidden, intermediate: model.intermediate, normalizeTopK: model.normalizeTopK },
    workload: { source: workload.spec, description: workload.description, batches: s.batches, tokensPerBatch: workload.tokensPerBatch, seed: workload.seed },
    policies: config.policies.map((p) => ({ use: p.use, ...(p.options ? { options: p.options } : {}) })),
    dispatcher: config.dispatcher.use,
    ...(config.store ? { storePlugin: config.store.use } : {}),
    batches: s.batches,
    tokens: s.tokens,
    seconds,
    tokensPerSecond: s.tokens / seconds,
    timingsMs: timings,
    load: { before: s.loadBefore, after: s.loadAfter },
    maxMeanLoad: { before: { mean: s.maxMeanBefore.mean, worst: s.maxMeanBefore.max }, after: { mean: s.maxMeanAfter.mean, worst: s.maxMeanAfter.max } },
    pairs: s.pairs,
    droppedPairs: s.droppedPairs,
    droppedFraction: s.droppedFraction,
    reroutedPairs: s.reroutedPairs,
    addedPairs: s.addedPairs,
    gateMassKept: s.gateMassKept,
    tokensFullyDropped: s.tokensFullyDropped,
    dispatch: s.dispatch,
    ...(s.store ? { store: s.store } : {}),
    ...(metrics ? { metrics: { url: metrics.url } } : {}),
    fallbacks: s.fallbacks,
    ...(device
      ? {
          pipeline: {
            stages: [{ stage: 'gate', where: 'device' as const }, ...stages, { stage: 'telemetry', where: 'device' as const }].map((st) => ({ ...st, medianMs: median(stageMs.get(st.stage)) })),
            hostRoundTrips: roundTrips,
            startupMs: firstOut - t0,
            // steady state: from the first batch out to the last, batches in flight
            msPerBatch: s.batches > 1 ? (lastOut - firstOut) / (s.batches - 1) : lastOut - t0,
            inFlight,
          },
        }
      : {}),
    output: { l2Norm: l2Norm(batchNorms), batchNorms },
  }
}

/** The dispatcher line of the text report. */
function renderDispatch(r: RunReport): string {
  const d = r.dispatch
  const overflow = d.droppedPairs === null ? 'overflow drops not counted on this backend' : `${fmt(d.droppedPairs)} pairs dropped on overflow`
  const cap = d.capacity === null ? 'exact groups' : `capacity ${fmt(d.capacity)} rows per expert`
  return `dispatch     ${r.dispatcher} (${d.mode}, ${cap}): ${fmt(d.slots)} slots computed, ${fmt(d.paddingRows)} padding, waste factor ${d.wasteFactor.toFixed(3)}; ${overflow}; ${fmt(d.bytesCrossDevice)} bytes across devices`
}

/**
 * Serves the stream's telemetry as Prometheus metrics while the run lasts. `@moe-route/telemetry`
 * (with prom-client) is an optional peer dependency, imported only here.
 */
async function serveRunMetrics(stream: TokenStream<LayerSummary>, port: number, host: string, engine: { dispose(): Promise<void> }): Promise<{ url: string; close(): Promise<void> }> {
  try {
    const { RoutingMetrics, serveMetrics } = await importOptional('@moe-route/telemetry', '--metrics-port', () => import('@moe-route/telemetry'))
    const metrics = new RoutingMetrics()
    metrics.observe(stream)
    return await serveMetrics({ port, host, registry: metrics.registry })
  } catch (e) {
    await engine.dispose()
    throw e
  }
}

/** Human-readable report. */
export function renderRun(r: RunReport): string {
  const opts = (o?: Record<string, unknown>) => (o ? ' ' + JSON.stringify(o) : '')
  return [
    `moe-route run: ${r.shape.name ?? 'MoE layer'}: E=${r.shape.experts} k=${r.shape.topK} H=${r.shape.hidden} I=${r.shape.intermediate}${r.shape.normalizeTopK ? ' (top-k renormalised)' : ''}`,
    `config       ${r.config}`,
    `backend      ${r.backend.name}${r.backend.adapter ? ` (${r.backend.adapter})` : ''}`,
    `workload     ${r.workload.source}: ${r.workload.description}`,
    `batches      ${r.batches} × ${r.workload.tokensPerBatch} tokens = ${fmt(r.tokens)} tokens, seed ${r.workload.seed}`,
    `policies     ${r.policies.length ? r.policies.map((p) => p.use + opts(p.options)).join(' → ') : '(none)'}; dispatcher ${r.dispatcher}${r.storePlugin ? `; store ${r.storePlugin}` : ''}`,
    `throughput   ${fmt(r.tokensPerSecond)} tokens/s (${r.seconds.toFixed(2)} s; routing ${fmt(r.timingsMs.routing)} ms, policies ${fmt(r.timingsMs.policies)} ms, experts ${fmt(r.timingsMs.experts)} ms)`,
    `load per expert (pairs over all batches)`,
    loadHistogram(r.load.before, r.load.after),
    `max/mean     before: mean ${r.maxMeanLoad.before.mean.toFixed(3)}, worst batch ${r.maxMeanLoad.before.worst.toFixed(3)}   after: mean ${r.maxMeanLoad.after.mean.toFixed(3)}, worst batch ${r.maxMeanLoad.after.worst.toFixed(3)}`,
    `dropped      ${fmt(r.droppedPairs)} of ${fmt(r.pairs)} pairs (${pct(r.droppedFraction)}); rerouted ${fmt(r.reroutedPairs)}; added ${fmt(r.addedPairs)}; gate mass kept ${pct(r.gateMassKept)}; tokens with every pair dropped ${fmt(r.tokensFullyDropped)}`,
    renderDispatch(r),
    ...(r.store
      ? [`store        hit rate ${pct(r.store.hitRate)} (${fmt(r.store.hits)} hits, ${fmt(r.store.misses)} misses, ${fmt(r.store.evictions)} evictions), ${fmt(r.store.bytesUploaded / 2 ** 20, 1)} MiB uploaded in ${fmt(r.store.uploadMs, 1)} ms`]
      : []),
    ...(r.fallbacks ? [`fallbacks    ${r.fallbacks} batches finished on the CPU backend`] : []),
    ...(r.pipeline
      ? [
          `pipeline     ${r.pipeline.stages.map((st) => `${st.stage} [${st.where}${st.medianMs !== null ? ` ${fmt(st.medianMs, 3)} ms` : ''}]`).join(' → ')}`,
          `             ${fmt(r.pipeline.msPerBatch, 3)} ms per batch in steady state (${r.pipeline.inFlight} in flight); first batch out after ${fmt(r.pipeline.startupMs)} ms` +
            (Object.keys(r.pipeline.hostRoundTrips).length ? `; host round trips: ${Object.entries(r.pipeline.hostRoundTrips).map(([k, n]) => `${k} ${n}`).join(', ')}` : '; no host round trips'),
        ]
      : []),
    `output       L2 norm ${r.output.l2Norm.toFixed(6)} over ${r.output.batchNorms.length} batches`,
  ].join('\n')
}
