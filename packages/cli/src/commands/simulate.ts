/**
 * `moe-route simulate`: a config's workload through its router, policy stack and placement on
 * D devices in the expert-parallel simulator; prints the tables and can write an HTML report.
 * Placements that learn (greedy, anti-correlation, collaboration, eplb) follow the paper's
 * protocol: built on the first half of the batches, simulated on the second half.
 * Workload specs are simulated over worker threads (`--workers`), traces and engine records
 * are streamed on this thread; either way memory holds one batch at a time per thread.
 * `--sweep key=v1,v2` runs the Cartesian product of settings and reports one table and chart.
 */
import { writeFileSync } from 'node:fs'
import { availableParallelism } from 'node:os'
import { resolve } from 'node:path'
import { ErrorCodes, MAX_DEVICES, MAX_LAYER, MoeError, expertLoad, minOf, quantile, type PlacementMap, type Routing, type TokenBatch } from '@moe-route/core'
import { balancedness, coactivationCounts, imbalanceRatio, utilizationRate } from '@moe-route/policy-placement'
import { createSimulator, isRouting, renderReport, type BatchSimulation, type SimulationResult } from '@moe-route/simulator'
import { routingFromChoices, ScoreModel, type RoutingRecord } from '@moe-route/workloads'
import { simulateInWorkers } from '@moe-route/simulator/node'
import type { Command } from 'commander'
import { intOption, type CliContext } from '../context.js'
import { createProgress } from '../progress.js'
import { fmt, pct, table } from '../report.js'
import { openWorkload } from '../workload-source.js'
import { openRecordIfAny, recordLayerBatches, recordLoads } from '../record-source.js'
import { generatorBatch, generatorOf, placementOf, policiesOf, prepareSimulation, type PreparedSimulation, type SimulateJobData, type SweepSetting } from './simulate-job.js'
import { parseSweeps, renderSweep, runSweep } from './simulate-sweep.js'

interface SimulateFlags {
  config?: string
  trace?: string
  devices?: string
  layer?: string
  json?: boolean
  report?: string
  workers?: string
  sweep?: string[]
  progress?: boolean
}

/** Hooks of {@link simulateJob}: a sweep point's settings, a per-batch callback, the worker count. */
export interface SimulateHooks {
  readonly settings?: readonly SweepSetting[]
  readonly onBatch?: (batch: BatchSimulation) => void
  /** Worker threads for workload specs (default {@link defaultWorkers}). */
  readonly workers?: number
}

/** The job module worker threads import (the built file next to this one; the source under tests). */
const JOB_MODULE = new URL(import.meta.url.endsWith('.ts') ? './simulate-job.ts' : './simulate-job.js', import.meta.url)

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
    vllm: { min: minOf(bal), p50: quantile(bal, 0.5), p90: quantile(bal, 0.1), avg: mean(bal) },
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
    .option('--workers <n>', 'worker threads for workload specs (default: one per 16 M pairs, at most the cores; 1 = this thread); results do not depend on it')
    .option('--sweep <key=v1,v2,…>', 'run every combination of settings (repeatable): capacityFactor, devices, placement, policies (a+b stacks, none) or a dotted config path', (v: string, acc: string[] = []) => [...acc, v])
    .option('--json', 'print the summary as JSON')
    .option('--report <out.html>', 'write an HTML report with plots (with --sweep: the sweep chart)')
    .option('--no-progress', 'no progress display (it only shows on a terminal)')
    .action(async (flags: SimulateFlags) => {
      const workers = intOption(flags.workers, '--workers', 1, 256)
      if (flags.sweep?.length) {
        const sweep = await runSweep(parseSweeps(flags.sweep), (settings, onBatch) => simulateJob(flags, ctx, { settings, onBatch, ...(workers ? { workers } : {}) }), ctx, flags.config ?? '(embedded default config)')
        if (flags.report) {
          const out = resolve(ctx.cwd, flags.report)
          writeFileSync(out, sweep.html)
          if (!flags.json) ctx.err(`sweep chart written to ${out}`)
        }
        ctx.out(flags.json ? JSON.stringify(sweep.json, null, 2) : renderSweep(sweep))
        return
      }
      const showBar = ctx.interactive && !flags.json && flags.progress !== false
      const bar = createProgress(ctx, showBar, showBar ? await plannedBatches(flags, ctx) : 0, 'batches')
      let tokens = 0
      let result: SimulationResult
      try {
        const onBatch = showBar ? (b: BatchSimulation) => bar.tick(1, { tokens: fmt((tokens += b.tokens)) }) : undefined
        result = await simulateJob(flags, ctx, { ...(onBatch ? { onBatch } : {}), ...(workers ? { workers } : {}) })
      } finally {
        bar.stop()
      }
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

/** The batches a run will simulate, for the progress bar (the config's count; records may have fewer). */
async function plannedBatches(flags: SimulateFlags, ctx: CliContext): Promise<number> {
  const prep = await prepareSimulation(jobData(flags, ctx))
  const n = prep.loaded.config.workload?.batches ?? 16
  return LEARNED.has(prep.placementRef.use) ? n - Math.floor(n / 2) : n
}

function jobData(flags: SimulateFlags, ctx: CliContext, settings: readonly SweepSetting[] = []): SimulateJobData {
  const devices = intOption(flags.devices, '--devices', 1, MAX_DEVICES)
  return { config: flags.config, cwd: ctx.cwd, ...(ctx.security ? { security: { ...ctx.security } } : {}), ...(devices ? { devices } : {}), ...(flags.trace ? { trace: flags.trace } : {}), settings }
}

/** Runs the simulation a `simulate` command line asks for. */
export async function simulateJob(flags: SimulateFlags, ctx: CliContext, hooks: SimulateHooks = {}): Promise<SimulationResult> {
  const data = jobData(flags, ctx, hooks.settings)
  const prep = await prepareSimulation(data)
  const { config } = prep.loaded
  const source = config.workload?.source
  const record = source ? await openRecordIfAny(source, ctx.cwd, config.model.experts) : null
  if (record) {
    try {
      if (record.experts !== config.model.experts) {
        throw new MoeError(ErrorCodes.SHAPE_MISMATCH, `${source} routes ${record.experts} experts, the model has ${config.model.experts}`, { path: '/workload/source' })
      }
      const layer = intOption(flags.layer, '--layer', 0, MAX_LAYER) ?? config.workload?.layer ?? record.layers[0]
      const li = record.layers.indexOf(layer)
      if (li < 0) throw new MoeError(ErrorCodes.INPUT_INVALID, `${source} has no layer ${layer} (layers: ${record.layers.join(', ')})`, { path: '--layer' })
      const tokensPerBatch = config.workload?.tokensPerBatch ?? 512
      const batches = config.workload?.batches ?? 16
      if (record.kind === 'counts') return await simulateLoads(prep, record, li, hooks)
      if (record.topK !== config.model.topK) throw new MoeError(ErrorCodes.SHAPE_MISMATCH, `${source} routes top-${record.topK}, the model top-${config.model.topK}`, { path: '/model/topK' })
      const seed = config.workload?.seed ?? config.seed
      const normalize = prep.plainRouterNormalize
      // the plain router: ids become routings directly (scores made only if a policy reads them)
      const open = () => (normalize !== null ? recordLayerRoutings(record, li, { tokensPerBatch, batches, seed, normalizeTopK: normalize }) : recordLayerBatches(record, li, { tokensPerBatch, batches, seed }))
      return await simulateStream(prep, open, hooks)
    } finally {
      await record.close()
    }
  }
  const gen = generatorOf(prep)
  if (!gen) return simulateStream(prep, async () => (await openWorkload(config, ctx.cwd)).source, hooks)
  // a workload spec: random access to every batch, so worker threads can share the run
  const n = config.workload?.batches ?? 16
  const learns = LEARNED.has(prep.placementRef.use)
  let placement: PlacementMap | undefined
  let first = 0
  if (learns) {
    if (n < 2) throw new MoeError(ErrorCodes.INPUT_INVALID, `the protocol needs at least 2 batches of history, got ${n}`, { path: '/history' })
    first = Math.floor(n / 2)
    const build: Routing[] = []
    for (let id = 0; id < first; id++) build.push(generatorBatch(prep, gen, id))
    placement = learnedPlacement(prep, build)
  }
  const ids = Array.from({ length: n - first }, (_, i) => first + i)
  const pairs = ids.length * (config.workload?.tokensPerBatch ?? 512) * config.model.topK
  const workers = hooks.workers ?? defaultWorkers(pairs)
  return simulateInWorkers({
    module: JOB_MODULE,
    data: { ...data, ...(placement ? { placement } : {}), batchIds: ids } satisfies SimulateJobData,
    workers,
    ...(hooks.onBatch ? { onBatch: hooks.onBatch } : {}),
  })
}

/**
 * One layer of a token-level record as routings, one batch in memory: tokens with every slot
 * filled, their ids as recorded (slot order = rank) and closed-form scores (workloads'
 * `routingFromChoices`; tokens are numbered in the order they are kept).
 */
async function* recordLayerRoutings(
  record: RoutingRecord,
  layerIndex: number,
  o: { tokensPerBatch: number; batches: number; seed: number; normalizeTopK: boolean },
): AsyncGenerator<Routing> {
  const k = record.topK as number
  const L = record.layers.length
  const E = record.experts
  const model = new ScoreModel(E, k)
  let buf = new Int32Array(o.tokensPerBatch * k)
  let n = 0
  let first = 0
  let made = 0
  const flush = () => {
    const r = routingFromChoices(buf.subarray(0, n * k), { experts: E, topK: k, seed: o.seed, firstToken: first, normalizeTopK: o.normalizeTopK, model })
    first += n
    n = 0
    made++
    buf = new Int32Array(o.tokensPerBatch * k)
    return r
  }
  for await (const c of record.chunks()) {
    for (let t = 0; t < c.tokens; t++) {
      const base = (t * L + layerIndex) * k
      let full = true
      for (let j = 0; j < k; j++) if (c.ids[base + j] < 0) full = false
      if (!full) continue
      buf.set(c.ids.subarray(base, base + k), n * k)
      if (++n === o.tokensPerBatch) {
        yield flush()
        if (made >= o.batches) return
      }
    }
  }
  if (n > 0 && made < o.batches) yield flush()
}

/**
 * Worker threads by default: one per 16 M pairs, at most the machine's cores. A worker loads the
 * CLI and the config again (about a core-second at startup on a small VM), which a run must
 * outweigh; on a shared machine extra threads also compete with other work. `--workers` overrides.
 */
export function defaultWorkers(pairs: number): number {
  return Math.max(1, Math.min(availableParallelism(), Math.floor(pairs / 16_000_000)))
}

/** A learned placement built on routed history batches (their loads and co-activation). */
function learnedPlacement(prep: PreparedSimulation, build: readonly { tokens: number; slots: number; expertIds: Int32Array; experts: number }[]): PlacementMap {
  return placementOf(prep, { history: build.map((r) => expertLoad(r as Routing)), coactivation: coactivationCounts(prep.loaded.config.model.experts, build) })
}

/**
 * A streamed source (trace file, token-level record) on this thread, one batch in memory. A
 * learned placement reads the source twice: its first half builds the placement (history is
 * kept as per-batch loads and summed co-activation only), then the rest is simulated.
 */
async function simulateStream(
  prep: PreparedSimulation,
  open: () => AsyncIterable<TokenBatch | Routing> | Promise<AsyncIterable<TokenBatch | Routing>>,
  hooks: SimulateHooks,
): Promise<SimulationResult> {
  const { config, registry } = prep.loaded
  const router = registry.create('router', config.router.use, config.router.options ?? {}, prep.context, '/router')
  const route = (b: TokenBatch | Routing): Routing =>
    isRouting(b) ? b : router.route({
      tokens: b.tokens,
      experts: config.model.experts,
      ...(b.logits ? { logits: b.logits } : {}),
      ...(b.scores ? { scores: b.scores } : {}),
      ...(b.sourceDevice ? { sourceDevice: b.sourceDevice } : {}),
    })
  const emptySource = () => new MoeError(ErrorCodes.INPUT_EMPTY, `${config.workload?.source ?? 'the workload'} holds no batches to simulate (an empty trace?)`, { path: '/workload/source' })
  const learns = LEARNED.has(prep.placementRef.use)
  let placement: PlacementMap
  let first = 0
  if (learns) {
    let n = 0
    for await (const _ of await open()) n++
    if (n === 0) throw emptySource()
    if (n < 2) throw new MoeError(ErrorCodes.INPUT_INVALID, `the protocol needs at least 2 batches of history, got ${n}`, { path: '/history' })
    first = Math.floor(n / 2)
    const E = config.model.experts
    const history: number[][] = []
    const co = Array.from({ length: E }, () => new Array<number>(E).fill(0))
    let i = 0
    for await (const b of await open()) {
      if (i++ >= first) break
      const r = route(b)
      history.push(expertLoad(r))
      const m = coactivationCounts(E, [r])
      for (let a = 0; a < E; a++) for (let c = 0; c < E; c++) co[a][c] += m[a][c]
    }
    placement = placementOf(prep, { history, coactivation: co })
  } else placement = placementOf(prep)
  const sim = createSimulator({ model: config.model, placement, policies: policiesOf(prep, placement), seed: config.seed, activationBytes: config.activationBytes })
  let i = 0
  for await (const b of await open()) {
    if (i >= first) {
      const rec = sim.step(route(b), i)
      hooks.onBatch?.(rec)
    }
    i++
  }
  if (i === 0) throw emptySource()
  return sim.result()
}

/**
 * Counts-only records through the simulator's load model: each recorded step is a batch known by
 * its per-expert counts; learned placements are built on the first half of the steps.
 */
async function simulateLoads(prep: PreparedSimulation, record: NonNullable<Awaited<ReturnType<typeof openRecordIfAny>>>, li: number, hooks: SimulateHooks): Promise<SimulationResult> {
  const { config } = prep.loaded
  if (config.policies.length) {
    throw new MoeError(ErrorCodes.INPUT_INVALID, `${record.file} holds expert counts only (${record.format}): policies need per-token routing; simulate it with "policies": [] (the load model)`, { path: '/policies' })
  }
  const loads = await recordLoads(record)
  const steps = loads.steps.map((s) => [...s[li]])
  if (steps.length === 0) throw new MoeError(ErrorCodes.INPUT_EMPTY, `${record.file} holds no recorded steps to simulate`, { path: '/workload/source' })
  const learns = LEARNED.has(prep.placementRef.use)
  const half = learns ? Math.floor(steps.length / 2) : 0
  const build = steps.slice(0, half)
  const measure = steps.slice(half)
  const placement = placementOf(prep, learns ? { history: build } : {})
  const sim = createSimulator({ model: config.model, placement, seed: config.seed, activationBytes: config.activationBytes })
  measure.forEach((load, i) => {
    const pairs = load.reduce((a, b) => a + b, 0)
    const rec = sim.stepLoads(load, loads.stepTokens[half + i] ?? Math.round(pairs / config.model.topK), half + i)
    hooks.onBatch?.(rec)
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
