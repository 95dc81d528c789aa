/**
 * `moe-route simulate`: a config's workload through its router, policy stack and placement on
 * D devices in the expert-parallel simulator; prints the tables and can write an HTML report.
 * Placements that learn (greedy, anti-correlation, collaboration, eplb) follow the paper's
 * protocol: built on the first half of the batches, simulated on the second half.
 */
import { writeFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { expertLoad, type MoeConfig, type PluginContext, type PluginRef, type Routing, type RoutingPolicy, type TokenBatch } from '@moe-route/core'
import { coactivationCounts, placementPlugins, splitHistory } from '@moe-route/policy-placement'
import { createSimulator, renderReport, type SimulationResult } from '@moe-route/simulator'
import type { Command } from 'commander'
import { loadConfig } from '../config-loader.js'
import { intOption, type CliContext } from '../context.js'
import { fmt, pct, table } from '../report.js'
import { openWorkload } from '../workload-source.js'
import { createProgress } from '../progress.js'
import { ErrorCodes, MoeError } from '@moe-route/core'
import { balancedness, imbalanceRatio, quantile, utilizationRate } from '@moe-route/policy-placement'
import { openRecordIfAny, recordLayerBatches, recordLoads } from '../record-source.js'

interface SimulateFlags {
  config?: string
  trace?: string
  devices?: string
  layer?: string
  json?: boolean
  report?: string
  progress?: boolean
}

/** The engines' balance metrics over the simulated batches' device rows. */
export interface SimulationEngineMetrics {
  readonly batches: number
  /** vLLM balancedness (mean/max device rows) per batch: min, p50, p90 (10th percentile), avg. */
  readonly vllm: { readonly min: number; readonly p50: number; readonly p90: number; readonly avg: number }
  /** TensorRT-LLM imbalance ratio averaged over batches. */
  readonly trtllm: { readonly avg: number }
  /** SGLang utilization rate averaged over batches. */
  readonly sglang: { readonly utilizationRate: number }
}

/** Engine metrics of a simulation's per-batch device rows. */
export function simulationEngineMetrics(r: SimulationResult): SimulationEngineMetrics {
  const rows = r.batches.map((b) => b.deviceRows)
  const bal = rows.map(balancedness)
  const mean = (v: number[]) => (v.length ? v.reduce((a, b) => a + b, 0) / v.length : Number.NaN)
  return {
    batches: rows.length,
    vllm: { min: Math.min(...bal), p50: quantile(bal, 0.5), p90: quantile(bal, 0.1), avg: mean(bal) },
    trtllm: { avg: mean(rows.map(imbalanceRatio)) },
    sglang: { utilizationRate: mean(rows.map(utilizationRate)) },
  }
}

/** Registers `simulate`. */
export function register(program: Command, ctx: CliContext): void {
  program
    .command('simulate')
    .description('simulate expert parallelism: per-device load, all-to-all, layer latency and speedup vs no policies')
    .option('-c, --config <file>', 'config file (model, policies, placement, devices, workload; each defaults to the embedded default)')
    .option('--trace <file|spec>', 'routing trace (.jsonl/.npy/.safetensors) or workload spec instead of the config workload')
    .option('--devices <n>', 'override devices')
    .option('--layer <n>', 'engine records: the layer to simulate (default the workload layer, else the first)')
    .option('--json', 'print the summary as JSON')
    .option('--report <out.html>', 'write an HTML report with plots')
    .option('--no-progress', 'no progress display (it only shows on a terminal)')
    .action(async (flags: SimulateFlags) => {
      const result = await simulateJob(flags, ctx)
      if (flags.report) {
        const out = resolve(ctx.cwd, flags.report)
        writeFileSync(out, renderReport(result, `moe-route simulate ${flags.config ?? '(embedded default config)'}`))
        if (!flags.json) ctx.err(`report written to ${out}`)
      }
      const engineMetrics = simulationEngineMetrics(result)
      ctx.out(flags.json ? JSON.stringify({ setup: result.setup, summary: result.summary, engineMetrics }, null, 2) : `${renderSimulation(result)}\n\n${renderEngineMetrics(engineMetrics)}`)
    })
}

const LEARNED = new Set(['greedy', 'anti-correlation', 'collaboration', 'eplb'])

/** Runs the simulation a `simulate` command line asks for. */
export async function simulateJob(flags: SimulateFlags, ctx: CliContext): Promise<SimulationResult> {
  const devicesOverride = intOption(flags.devices, '--devices', 1)
  // Placement plugins of @moe-route/policy-placement are resolved here (the CLI's registry may not hold them yet).
  let placementRef: PluginRef = { use: 'contiguous' }
  const loaded = await loadConfig(flags.config, ctx.cwd, (raw): MoeConfig => {
    const { placement, ...rest } = raw
    if (placement) placementRef = placement
    return {
      ...rest,
      ...(devicesOverride ? { devices: devicesOverride } : {}),
      ...(flags.trace && raw.workload ? { workload: { ...raw.workload, source: flags.trace } } : flags.trace ? { workload: { source: flags.trace } } : {}),
    }
  })
  const { config, registry } = loaded
  for (const p of placementPlugins) if (!registry.has('placement', p.meta.name)) registry.register(p)
  const context: PluginContext = { model: config.model, devices: config.devices, seed: config.seed }
  const router = registry.create('router', config.router.use, config.router.options ?? {}, context, '/router')
  const source = config.workload?.source
  const record = source ? await openRecordIfAny(source, ctx.cwd, config.model.experts) : null
  const items: (TokenBatch | Routing)[] = []
  if (record) {
    try {
      if (record.experts !== config.model.experts) {
        throw new MoeError(ErrorCodes.SHAPE_MISMATCH, `${source} routes ${record.experts} experts, the model has ${config.model.experts}`, { path: '/workload/source' })
      }
      const layer = intOption(flags.layer, '--layer', 0) ?? config.workload?.layer ?? record.layers[0]
      const li = record.layers.indexOf(layer)
      if (li < 0) throw new MoeError(ErrorCodes.INPUT_INVALID, `${source} has no layer ${layer} (layers: ${record.layers.join(', ')})`, { path: '--layer' })
      const tokensPerBatch = config.workload?.tokensPerBatch ?? 512
      const batches = config.workload?.batches ?? 16
      if (record.kind === 'counts') return await simulateLoads(config, registry, context, placementRef, record, li, tokensPerBatch)
      if (record.topK !== config.model.topK) throw new MoeError(ErrorCodes.SHAPE_MISMATCH, `${source} routes top-${record.topK}, the model top-${config.model.topK}`, { path: '/model/topK' })
      const reading = createProgress(ctx, flags.progress !== false, batches, 'batches', { label: 'reading' })
      try {
        for await (const b of recordLayerBatches(record, li, { tokensPerBatch, batches, seed: config.workload?.seed ?? config.seed })) {
          items.push(b)
          reading.tick(1)
        }
      } finally {
        reading.stop()
      }
    } finally {
      await record.close()
    }
  } else {
    const workload = await openWorkload(config, ctx.cwd)
    const reading = createProgress(ctx, flags.progress !== false, workload.batches, 'batches', { label: 'reading' })
    try {
      for await (const b of workload.source) {
        items.push(b)
        reading.tick(1)
      }
    } finally {
      reading.stop()
    }
  }
  const routings = items.map((b) =>
    router.route({
      tokens: b.tokens,
      experts: config.model.experts,
      ...((b as TokenBatch).logits ? { logits: (b as TokenBatch).logits } : {}),
      ...((b as TokenBatch).scores ? { scores: (b as TokenBatch).scores } : {}),
      ...((b as TokenBatch).sourceDevice ? { sourceDevice: (b as TokenBatch).sourceDevice } : {}),
    }),
  )
  const learns = LEARNED.has(placementRef.use)
  const { build, measure } = learns ? splitHistory(routings) : { build: [], measure: routings }
  const placement = registry
    .create('placement', placementRef.use, placementRef.options ?? {}, context, '/placement')
    .place({
      experts: config.model.experts,
      devices: config.devices,
      ...(learns ? { history: build.map(expertLoad), coactivation: coactivationCounts(config.model.experts, build) } : {}),
    })
  const placedContext: PluginContext = { ...context, placement }
  const policies: RoutingPolicy[] = config.policies.map((p, i) => registry.create('policy', p.use, p.options ?? {}, placedContext, `/policies/${i}`))
  const sim = createSimulator({ model: config.model, placement, policies, seed: config.seed, activationBytes: config.activationBytes })
  const simulating = createProgress(ctx, flags.progress !== false, measure.length, 'batches', { label: 'simulating' })
  try {
    measure.forEach((r, i) => {
      sim.step(r, (learns ? build.length : 0) + i)
      simulating.tick(1)
    })
  } finally {
    simulating.stop()
  }
  return sim.result()
}

/**
 * Counts-only records through the simulator's load model: each recorded step is a batch known by
 * its per-expert counts; learned placements are built on the first half of the steps.
 */
async function simulateLoads(
  config: Awaited<ReturnType<typeof loadConfig>>['config'],
  registry: Awaited<ReturnType<typeof loadConfig>>['registry'],
  context: PluginContext,
  placementRef: PluginRef,
  record: NonNullable<Awaited<ReturnType<typeof openRecordIfAny>>>,
  li: number,
  _tokensPerBatch: number,
): Promise<SimulationResult> {
  if (config.policies.length) {
    throw new MoeError(ErrorCodes.INPUT_INVALID, `${record.file} holds expert counts only (${record.format}): policies need per-token routing; simulate it with "policies": [] (the load model)`, { path: '/policies' })
  }
  const loads = await recordLoads(record)
  const steps = loads.steps.map((s) => [...s[li]])
  const learns = LEARNED.has(placementRef.use)
  const half = learns ? Math.floor(steps.length / 2) : 0
  const build = steps.slice(0, half)
  const measure = steps.slice(half)
  const placement = registry
    .create('placement', placementRef.use, placementRef.options ?? {}, context, '/placement')
    .place({ experts: config.model.experts, devices: config.devices, ...(learns ? { history: build } : {}) })
  const sim = createSimulator({ model: config.model, placement, seed: config.seed, activationBytes: config.activationBytes })
  measure.forEach((load, i) => {
    const pairs = load.reduce((a, b) => a + b, 0)
    sim.stepLoads(load, loads.stepTokens[half + i] ?? Math.round(pairs / config.model.topK), half + i)
  })
  return sim.result()
}

/** Text of {@link SimulationEngineMetrics}. */
export function renderEngineMetrics(m: SimulationEngineMetrics): string {
  const f = (x: number) => (Number.isFinite(x) ? x.toFixed(3) : '–')
  return [
    `engine metrics over ${m.batches} simulated batches (device rows):`,
    `  vLLM balancedness: min ${f(m.vllm.min)}, p50 ${f(m.vllm.p50)}, p90 ${f(m.vllm.p90)}, avg ${f(m.vllm.avg)}`,
    `  TensorRT-LLM imbalance ratio: avg ${f(m.trtllm.avg)}`,
    `  SGLang utilization rate: ${f(m.sglang.utilizationRate)}`,
  ].join('\n')
}

/** The text tables of `simulate`. */
export function renderSimulation(r: SimulationResult): string {
  const s = r.summary
  const lines = [
    `placement ${r.setup.placement} · policies ${r.setup.policies.join(' → ') || '(none)'} · ${s.devices} devices · ${s.experts} experts`,
    `${fmt(s.batches)} batches, ${fmt(s.tokens)} tokens simulated in ${s.wallSeconds.toFixed(2)} s`,
    `layer: ${r.setup.model ? `${r.setup.model.name ? `${r.setup.model.name}, ` : ''}E ${r.setup.model.experts}, top-${r.setup.model.topK}, H ${r.setup.model.hidden}, I ${r.setup.model.intermediate}` : `${s.experts} experts`}`,
    `cost model: calibrated on ${r.setup.cost}, scaled to this layer by weight bytes and FLOPs`,
    `link: ${r.setup.link}`,
    '',
    table([
      ['layer latency (ms)', 'mean', 'p50', 'p95', 'p99', 'max'],
      ['policies', s.latencyMs.mean.toFixed(3), s.latencyMs.p50.toFixed(3), s.latencyMs.p95.toFixed(3), s.latencyMs.p99.toFixed(3), s.latencyMs.max.toFixed(3)],
      ['baseline', s.baselineLatencyMs.mean.toFixed(3), s.baselineLatencyMs.p50.toFixed(3), s.baselineLatencyMs.p95.toFixed(3), s.baselineLatencyMs.p99.toFixed(3), s.baselineLatencyMs.max.toFixed(3)],
    ]),
    '',
    table([
      ['metric', 'policies', 'baseline'],
      ['speedup', s.speedup.toFixed(3), '1.000'],
      ['Max Load', s.maxLoad.toFixed(3), s.baselineMaxLoad.toFixed(3)],
      ['Avg Max Load', s.avgMaxLoad.toFixed(3), s.baselineAvgMaxLoad.toFixed(3)],
      ['C_T (devices per token)', s.cT.toFixed(3), s.baselineCT.toFixed(3)],
      ['all-to-all bytes', fmt(s.a2aBytes), fmt(s.baselineA2aBytes)],
      ['intra-collaboration', Number.isNaN(s.intraCollaboration) ? '–' : s.intraCollaboration.toFixed(3), ''],
      ['dropped fraction', pct(s.droppedFraction), pct(0)],
    ]),
    '',
    table([['device', 'rows', 'share'], ...s.deviceRows.map((v, d) => [`d${d}`, fmt(v), pct(v / Math.max(1, s.deviceRows.reduce((a, b) => a + b, 0)))])]),
  ]
  return lines.join('\n')
}
