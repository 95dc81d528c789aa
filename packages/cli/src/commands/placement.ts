/**
 * `moe-route placement`: DeepSeek EPLB replicas from per-layer loads (`--algorithm eplb
 * --weights w.json`), or a placement learned from a trace (`greedy`, `anti-correlation`,
 * `collaboration`, `contiguous`), built on the first half and measured on the second.
 * Prints the phy2log form serving engines consume.
 */
import { contiguousPlacement, ErrorCodes, expertLoad, MoeError, type Routing } from '@moe-route/core'
import {
  antiCorrelationPlacement,
  coactivationCounts,
  collaborationPlacement,
  ENGINE_FORMATS,
  evaluateLoad,
  formatEngineMetrics,
  greedyPlacement,
  phy2logFromPlacement,
  placementToJSON,
  rebalanceExperts,
  spreadReplicas,
  writeEnginePlacement,
  type EngineFormat,
  type LayeredPlacement,
} from '@moe-route/policy-placement'
import { splitHistory } from '@moe-route/policy-placement'
import { writeFileSync } from 'node:fs'
import type { RoutingRecord } from '@moe-route/workloads'
import { loadMetrics, openRecordIfAny, recordLoads, selectLayers, metricsPlacement } from '../record-source.js'
import { softmaxTopK, type TokenBatch } from '@moe-route/core'
import * as workloads from '@moe-route/workloads'
import { Option, type Command } from 'commander'
import { resolve } from 'node:path'
import { intOption, type CliContext } from '../context.js'
import { readJsonFile } from '@moe-route/core/node'
import { table } from '../report.js'
import { MAX_DEVICES, MAX_EXPERTS, MAX_LAYER, MAX_TOKENS_PER_BATCH, MAX_TOP_K } from '@moe-route/core'
import { createProgress, withActivity } from '../progress.js'

interface PlacementFlags {
  algorithm: 'eplb' | 'greedy' | 'anti-correlation' | 'collaboration' | 'contiguous'
  weights?: string
  replicas?: string
  groups?: string
  nodes?: string
  gpus?: string
  trace?: string
  experts?: string
  topK?: string
  devices?: string
  tokens?: string
  batches?: string
  rho?: string
  format?: string
  out?: string
  layer?: string
  json?: boolean
  progress?: boolean
}

/** Registers `placement`. */
export function register(program: Command, ctx: CliContext): void {
  program
    .command('placement')
    .description('compute an expert placement: DeepSeek EPLB from loads, or greedy / anti-correlation / collaboration from a trace')
    .addOption(new Option('--algorithm <name>', 'placement algorithm').choices(['eplb', 'greedy', 'anti-correlation', 'collaboration', 'contiguous']).default('eplb'))
    .option('--weights <w.json>', 'eplb: [[load per expert] per layer]')
    .option('--replicas <R>', 'eplb: physical expert slots')
    .option('--groups <G>', 'eplb: expert groups', '1')
    .option('--nodes <N>', 'eplb: nodes', '1')
    .option('--gpus <P>', 'eplb: GPUs')
    .option('--trace <file|spec>', 'routing trace (.jsonl/.npy/.safetensors) or workload spec (e.g. olmoe:arxiv:layer0)')
    .option('--experts <E>', 'experts of the trace (default: from a workload spec)')
    .option('--top-k <k>', 'experts per token of the trace (default: from a workload spec)')
    .option('--devices <D>', 'devices to place on', '8')
    .option('--tokens <n>', 'tokens per batch read from the trace', '2048')
    .option('--batches <n>', 'batches read from the trace (first half builds, second half measures)', '32')
    .option('--rho <ρ>', 'anti-correlation weight', '0.5')
    .addOption(new Option('--format <name>', 'placement file format: sglang (--init-expert-location mapping), sglang-count (logical_count), vllm (expert map), trtllm (moe_load_balancer.yaml), eplb, moe-route').choices([...ENGINE_FORMATS]))
    .option('--out <file>', 'write the placement file here')
    .option('--layer <n>', 'engine records: only this layer (default every layer)')
    .option('--json', 'print only the placement document')
    .option('--no-progress', 'no progress display (it only shows on a terminal)')
    .action(async (flags: PlacementFlags) => ctx.out(await placementJob(flags, ctx)))
}

/** Runs `placement` and returns what it prints. */
export async function placementJob(flags: PlacementFlags, ctx: CliContext): Promise<string> {
  if (flags.trace) {
    const record = await openRecordIfAny(flags.trace, ctx.cwd, intOption(flags.experts, '--experts', 1, MAX_EXPERTS))
    if (record) {
      try {
        return await withActivity(ctx, flags.progress !== false, `placing from ${flags.trace}`, () => recordPlacement(flags, record, ctx))
      } finally {
        await record.close()
      }
    }
  }
  if (flags.algorithm === 'eplb') {
    if (!flags.weights) throw new MoeError(ErrorCodes.INPUT_INVALID, '--algorithm eplb needs --weights w.json', { path: '--weights' })
    const weight = readJsonFile(resolve(ctx.cwd, flags.weights))
    if (!Array.isArray(weight) || !weight.every((row) => Array.isArray(row) && row.every((v) => typeof v === 'number'))) {
      throw new MoeError(ErrorCodes.INPUT_INVALID, `${flags.weights} must be [[load per expert] per layer]`, { file: flags.weights })
    }
    const E = (weight[0] as number[]).length
    const gpus = intOption(flags.gpus, '--gpus', 1, MAX_DEVICES) ?? 8
    const r = rebalanceExperts(weight as number[][], {
      numReplicas: intOption(flags.replicas, '--replicas', 1, MAX_EXPERTS) ?? Math.ceil(E / gpus) * gpus,
      numGroups: intOption(flags.groups, '--groups', 1, MAX_DEVICES) ?? 1,
      numNodes: intOption(flags.nodes, '--nodes', 1, MAX_DEVICES) ?? 1,
      numGpus: gpus,
    })
    if (flags.format || flags.out) {
      const layered = { layers: r.phy2log.map((_, i) => i), gpus, experts: E, phy2log: r.phy2log }
      return emit(flags, layered, weight as number[][], ctx, null)
    }
    return JSON.stringify({ phy2log: r.phy2log, log2phy: r.log2phy, logcnt: r.logcnt }, null, flags.json ? undefined : 2)
  }
  if (!flags.trace) throw new MoeError(ErrorCodes.INPUT_INVALID, `--algorithm ${flags.algorithm} needs --trace`, { path: '--trace' })
  const devices = intOption(flags.devices, '--devices', 1, MAX_DEVICES) ?? 8
  const tokensPerBatch = intOption(flags.tokens, '--tokens', 1, MAX_TOKENS_PER_BATCH) ?? 2048
  const batches = intOption(flags.batches, '--batches', 2) ?? 32
  const isFile = /\.(jsonl|npy|safetensors)$/i.test(flags.trace)
  const spec = isFile ? null : workloads.workloadFromSpec(flags.trace)
  const experts = intOption(flags.experts, '--experts', 1, MAX_EXPERTS) ?? spec?.experts
  const topK = intOption(flags.topK, '--top-k', 1, MAX_TOP_K) ?? spec?.topK
  if (!experts || !topK) throw new MoeError(ErrorCodes.INPUT_INVALID, 'a trace file needs --experts and --top-k', { path: '--experts' })
  const source: AsyncIterable<TokenBatch> | Iterable<TokenBatch> = spec
    ? spec.batchesSync({ tokensPerBatch, batches, seed: 1 })
    : workloads.traceBatches(resolve(ctx.cwd, flags.trace), { experts, topK, tokensPerBatch, batches } as Parameters<typeof workloads.traceBatches>[1])
  const routings: Routing[] = []
  const progress = createProgress(ctx, flags.progress !== false, batches, 'batches', { label: `reading ${flags.trace}` })
  try {
    for await (const b of source as AsyncIterable<TokenBatch>) {
      routings.push(softmaxTopK({ tokens: b.tokens, experts, ...(b.logits ? { logits: b.logits } : {}), ...(b.scores ? { scores: b.scores } : {}) }, topK, false))
      progress.tick(1)
      if (routings.length >= batches) break
    }
  } finally {
    progress.stop()
  }
  const { build, measure } = splitHistory(routings)
  const history = build.map(expertLoad)
  const map =
    flags.algorithm === 'greedy'
      ? greedyPlacement({ experts, devices, history })
      : flags.algorithm === 'anti-correlation'
        ? antiCorrelationPlacement({ experts, devices, history, rho: Number(flags.rho ?? 0.5) })
        : flags.algorithm === 'collaboration'
          ? collaborationPlacement({ experts, devices, coactivation: coactivationCounts(experts, build) })
          : contiguousPlacement(experts, devices)
  if (flags.format || flags.out) {
    const load = history.reduce((acc, h) => acc.map((v, e) => v + h[e]), new Array<number>(experts).fill(0))
    return emit(flags, { layers: [0], gpus: devices, experts, phy2log: [phy2logFromPlacement(map)] }, [load], ctx, null)
  }
  const doc = JSON.stringify(placementToJSON(map), null, flags.json ? undefined : 2)
  if (flags.json) return doc
  const test = measure.map(expertLoad)
  const ours = evaluateLoad(map, test)
  const base = evaluateLoad(contiguousPlacement(experts, devices), test)
  return [
    doc,
    '',
    `built on ${build.length} batches, measured on ${measure.length} (Paper B protocol); ideal share ${(1 / devices).toFixed(3)}`,
    table([
      ['placement', 'Max Load', 'Avg Max Load'],
      [flags.algorithm, ours.maxLoad.toFixed(3), ours.avgMaxLoad.toFixed(3)],
      ['contiguous', base.maxLoad.toFixed(3), base.avgMaxLoad.toFixed(3)],
    ]),
  ].join('\n')
}

/** Placement of every (or one) layer of an engine record, from its per-layer loads. */
async function recordPlacement(flags: PlacementFlags, record: RoutingRecord, ctx: CliContext): Promise<string> {
  const devices = intOption(flags.gpus, '--gpus', 1, MAX_DEVICES) ?? intOption(flags.devices, '--devices', 1, MAX_DEVICES) ?? 8
  const loads = await recordLoads(record, intOption(flags.tokens, '--tokens', 1, MAX_TOKENS_PER_BATCH))
  const pick = selectLayers(record, intOption(flags.layer, '--layer', 0, MAX_LAYER))
  const layers = pick.map((i) => record.layers[i])
  const E = record.experts
  const total = pick.map((i) => [...loads.total[i]])
  let phy2log: number[][]
  if (flags.algorithm === 'eplb') {
    const r = rebalanceExperts(total, {
      numReplicas: intOption(flags.replicas, '--replicas', 1, MAX_EXPERTS) ?? Math.ceil(E / devices) * devices,
      numGroups: intOption(flags.groups, '--groups', 1, MAX_DEVICES) ?? 1,
      numNodes: intOption(flags.nodes, '--nodes', 1, MAX_DEVICES) ?? 1,
      numGpus: devices,
    })
    phy2log = r.phy2log
  } else if (flags.algorithm === 'collaboration') {
    throw new MoeError(ErrorCodes.INPUT_INVALID, '--algorithm collaboration needs per-token co-activation; engine records give per-layer loads: use eplb, greedy, anti-correlation or contiguous', { path: '--algorithm' })
  } else {
    phy2log = pick.map((i) => {
      const history = loads.steps.map((s) => [...s[i]])
      const { build } = history.length >= 2 ? splitHistory(history) : { build: history }
      const map =
        flags.algorithm === 'greedy'
          ? greedyPlacement({ experts: E, devices, history: build })
          : flags.algorithm === 'anti-correlation'
            ? antiCorrelationPlacement({ experts: E, devices, history: build, rho: Number(flags.rho ?? 0.5) })
            : contiguousPlacement(E, devices)
      return phy2logFromPlacement(map)
    })
  }
  const format = (flags.format ?? (flags.algorithm === 'eplb' ? 'eplb' : 'moe-route')) as EngineFormat
  return emit({ ...flags, format }, { layers, gpus: devices, experts: E, phy2log }, total, ctx, `${record.format} ${record.file}`)
}

/** Writes or prints a layered placement in the chosen format, with the engines' metrics before and after. */
function emit(flags: PlacementFlags, placed: LayeredPlacement, loads: number[][], ctx: CliContext, source: string | null): string {
  const format = (flags.format ?? 'moe-route') as EngineFormat
  const notes: string[] = []
  let rows = placed.phy2log.map((r) => [...r])
  if (format === 'vllm') {
    rows = rows.map((r, i) => {
      const s = spreadReplicas(r, placed.gpus, loads[i])
      if (s.swaps) notes.push(`layer ${placed.layers[i]}: moved ${s.swaps} replica(s) so no device holds one expert twice (vLLM expert maps have one slot per expert)`)
      return s.row
    })
  }
  const final = { ...placed, phy2log: rows }
  const doc = writeEnginePlacement(final, format, loads)
  if (flags.json && !flags.out) return doc
  const totals = { layers: placed.layers, total: loads.map((l) => Float64Array.from(l)), steps: [], stepTokens: [] }
  const contiguous = metricsPlacement(placed.layers, placed.experts, placed.gpus)
  const after = loadMetrics(totals, final).whole
  const lines: string[] = []
  if (flags.out) {
    writeFileSync(resolve(ctx.cwd, flags.out), doc)
    lines.push(`wrote ${flags.out} (${format}, ${placed.layers.length} layer(s), ${rows[0].length} slots on ${placed.gpus} devices${source ? `, from ${source}` : ''})`)
  } else lines.push(doc)
  lines.push(...notes)
  if (contiguous) lines.push(formatEngineMetrics(loadMetrics(totals, contiguous).whole, 'before: contiguous placement'))
  lines.push(formatEngineMetrics(after, `after: ${flags.algorithm} placement`))
  return lines.join('\n')
}
