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

interface SimulateFlags {
  config: string
  trace?: string
  devices?: string
  json?: boolean
  report?: string
}

/** Registers `simulate`. */
export function register(program: Command, ctx: CliContext): void {
  program
    .command('simulate')
    .description('simulate expert parallelism: per-device load, all-to-all, layer latency and speedup vs no policies')
    .requiredOption('-c, --config <file>', 'config file (model, policies, placement, devices, workload)')
    .option('--trace <file|spec>', 'routing trace (.jsonl/.npy/.safetensors) or workload spec instead of the config workload')
    .option('--devices <n>', 'override devices')
    .option('--json', 'print the summary as JSON')
    .option('--report <out.html>', 'write an HTML report with plots')
    .action(async (flags: SimulateFlags) => {
      const result = await simulateJob(flags, ctx)
      if (flags.report) {
        const out = resolve(ctx.cwd, flags.report)
        writeFileSync(out, renderReport(result, `moe-route simulate ${flags.config}`))
        if (!flags.json) ctx.err(`report written to ${out}`)
      }
      ctx.out(flags.json ? JSON.stringify({ setup: result.setup, summary: result.summary }, null, 2) : renderSimulation(result))
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
  const workload = await openWorkload(config, ctx.cwd)
  const items: (TokenBatch | Routing)[] = []
  for await (const b of workload.source) items.push(b)
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
  measure.forEach((r, i) => sim.step(r, (learns ? build.length : 0) + i))
  return sim.result()
}

/** The text tables of `simulate`. */
export function renderSimulation(r: SimulationResult): string {
  const s = r.summary
  const lines = [
    `placement ${r.setup.placement} · policies ${r.setup.policies.join(' → ') || '(none)'} · ${s.devices} devices · ${s.experts} experts`,
    `${fmt(s.batches)} batches, ${fmt(s.tokens)} tokens simulated in ${s.wallSeconds.toFixed(2)} s`,
    `cost model: ${r.setup.cost}`,
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
