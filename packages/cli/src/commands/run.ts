/** `moe-route run`: the main job — a stream of batches through the configured layer. */
import { randomHidden, randomLayerWeights, l2Norm } from '@moe-route/backend-cpu'
import { TelemetryAggregate, TokenStream, createMoe, type BatchTelemetry, type LayerWeights, type MoeConfig, type TokenBatch } from '@moe-route/core'
import { Option, type Command } from 'commander'
import { loadConfig } from '../config-loader.js'
import type { CliContext } from '../context.js'
import { intOption } from '../context.js'
import { createProgress } from '../progress.js'
import { fmt, loadHistogram, pct } from '../report.js'
import { openWorkload } from '../workload-source.js'

interface RunFlags {
  config?: string
  json?: boolean
  backend?: string
  batches?: string
  tokens?: string
  progress?: boolean
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
  load: { before: number[]; after: number[] }
  maxMeanLoad: { before: { mean: number; worst: number }; after: { mean: number; worst: number } }
  pairs: number
  droppedPairs: number
  droppedFraction: number
  reroutedPairs: number
  addedPairs: number
  gateMassKept: number
  tokensFullyDropped: number
  store?: { hits: number; misses: number; hitRate: number; bytesUploaded: number }
  fallbacks: number
  output: { l2Norm: number; checksum: string }
}

/** Runs the job and returns its report. */
export async function runJob(flags: RunFlags, ctx: CliContext): Promise<RunReport> {
  const batchesOverride = intOption(flags.batches, '--batches', 1)
  const tokensOverride = intOption(flags.tokens, '--tokens', 1)
  const loaded = await loadConfig(flags.config, ctx.cwd, (raw): MoeConfig => ({
    ...raw,
    ...(flags.backend ? { backend: { use: flags.backend } } : {}),
    ...(raw.workload && (batchesOverride || tokensOverride)
      ? { workload: { ...raw.workload, ...(batchesOverride ? { batches: batchesOverride } : {}), ...(tokensOverride ? { tokensPerBatch: tokensOverride } : {}) } }
      : {}),
  }))
  const { config, registry } = loaded
  const model = config.model
  const weights: LayerWeights = randomLayerWeights(model, { seed: config.weights?.seed ?? config.seed, std: config.weights?.std ?? 0.02 })
  const engine = createMoe({ config, registry, weights, source: loaded.source })
  const workload = await openWorkload(config, ctx.cwd)
  let info = engine.backend?.info() ?? { name: 'none' }
  const agg = new TelemetryAggregate()
  const stream = new TokenStream(engine, { maxInFlight: config.stream?.maxInFlight ?? 1, capacity: config.stream?.capacity ?? 4 })
  const progress = createProgress(ctx, flags.progress !== false && !flags.json, workload.batches, 'batches')
  let sumSq = 0
  let checksum = 0x811c9dc5
  const timings = { routing: 0, policies: 0, dispatch: 0, store: 0, experts: 0, total: 0 }
  const t0 = performance.now()
  const producer = (async () => {
    try {
      for await (const b of workload.source) {
        const hidden = randomHidden(b.tokens, model.hidden, config.seed * 1_000_003 + b.id)
        await stream.write({ ...b, hidden } as TokenBatch)
      }
    } finally {
      stream.end()
    }
  })()
  // A failed batch makes the producer's next write reject; the consumer below reports that
  // failure, so the producer's rejection must not become an unhandled one.
  producer.catch(() => {})
  try {
    for await (const r of stream) {
      const t: BatchTelemetry = r.telemetry
      agg.add(t)
      timings.routing += t.timings.routeMs + t.timings.gateMs
      timings.policies += t.timings.policiesMs
      timings.dispatch += t.timings.dispatchMs
      timings.store += t.timings.storeMs
      timings.experts += t.timings.expertsMs
      timings.total += t.timings.totalMs
      if (r.output) {
        const n = l2Norm(r.output)
        sumSq += n * n
        checksum = mixChecksum(checksum, r.output)
      }
      progress.tick(1, { tokens: agg.tokens })
    }
    await producer
  } finally {
    progress.stop()
    // Read after the run: a GPU backend names its adapter once it has acquired the device.
    info = engine.backend?.info() ?? info
    await engine.dispose()
  }
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
    ...(s.store ? { store: s.store } : {}),
    fallbacks: s.fallbacks,
    output: { l2Norm: Math.sqrt(sumSq), checksum: (checksum >>> 0).toString(16).padStart(8, '0') },
  }
}

/** FNV-1a over values rounded to 4 significant digits (stable across backends within tolerance). */
function mixChecksum(h: number, v: Float32Array): number {
  for (let i = 0; i < v.length; i++) {
    const s = v[i] === 0 ? '0' : v[i].toPrecision(4)
    for (let j = 0; j < s.length; j++) {
      h ^= s.charCodeAt(j)
      h = Math.imul(h, 0x01000193)
    }
  }
  return h
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
    ...(r.store ? [`store        hit rate ${pct(r.store.hitRate)} (${r.store.hits} hits, ${r.store.misses} misses), ${fmt(r.store.bytesUploaded / 2 ** 20, 1)} MiB uploaded`] : []),
    ...(r.fallbacks ? [`fallbacks    ${r.fallbacks} batches finished on the CPU backend`] : []),
    `output       L2 norm ${r.output.l2Norm.toFixed(6)}, checksum ${r.output.checksum}`,
  ].join('\n')
}
