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
  evaluateLoad,
  greedyPlacement,
  placementToJSON,
  rebalanceExperts,
  splitHistory,
} from '@moe-route/policy-placement'
import { softmaxTopK, type TokenBatch } from '@moe-route/core'
import * as workloads from '@moe-route/workloads'
import { Option, type Command } from 'commander'
import { resolve } from 'node:path'
import { intOption, readJsonFile, type CliContext } from '../context.js'
import { table } from '../report.js'

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
  json?: boolean
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
    .option('--json', 'print only the JSON')
    .action(async (flags: PlacementFlags) => ctx.out(await placementJob(flags, ctx)))
}

/** Runs `placement` and returns what it prints. */
export async function placementJob(flags: PlacementFlags, ctx: CliContext): Promise<string> {
  if (flags.algorithm === 'eplb') {
    if (!flags.weights) throw new MoeError(ErrorCodes.INPUT_INVALID, '--algorithm eplb needs --weights w.json', { path: '--weights' })
    const weight = readJsonFile(resolve(ctx.cwd, flags.weights))
    if (!Array.isArray(weight) || !weight.every((row) => Array.isArray(row) && row.every((v) => typeof v === 'number'))) {
      throw new MoeError(ErrorCodes.INPUT_INVALID, `${flags.weights} must be [[load per expert] per layer]`, { file: flags.weights })
    }
    const E = (weight[0] as number[]).length
    const gpus = intOption(flags.gpus, '--gpus', 1) ?? 8
    const r = rebalanceExperts(weight as number[][], {
      numReplicas: intOption(flags.replicas, '--replicas', 1) ?? Math.ceil(E / gpus) * gpus,
      numGroups: intOption(flags.groups, '--groups', 1) ?? 1,
      numNodes: intOption(flags.nodes, '--nodes', 1) ?? 1,
      numGpus: gpus,
    })
    return JSON.stringify({ phy2log: r.phy2log, log2phy: r.log2phy, logcnt: r.logcnt }, null, flags.json ? undefined : 2)
  }
  if (!flags.trace) throw new MoeError(ErrorCodes.INPUT_INVALID, `--algorithm ${flags.algorithm} needs --trace`, { path: '--trace' })
  const devices = intOption(flags.devices, '--devices', 1) ?? 8
  const tokensPerBatch = intOption(flags.tokens, '--tokens', 1) ?? 2048
  const batches = intOption(flags.batches, '--batches', 2) ?? 32
  const isFile = /\.(jsonl|npy|safetensors)$/i.test(flags.trace)
  const spec = isFile ? null : workloads.workloadFromSpec(flags.trace)
  const experts = intOption(flags.experts, '--experts', 1) ?? spec?.experts
  const topK = intOption(flags.topK, '--top-k', 1) ?? spec?.topK
  if (!experts || !topK) throw new MoeError(ErrorCodes.INPUT_INVALID, 'a trace file needs --experts and --top-k', { path: '--experts' })
  const source: AsyncIterable<TokenBatch> | Iterable<TokenBatch> = spec
    ? spec.batchesSync({ tokensPerBatch, batches, seed: 1 })
    : workloads.traceBatches(resolve(ctx.cwd, flags.trace), { experts, topK, tokensPerBatch, batches } as Parameters<typeof workloads.traceBatches>[1])
  const routings: Routing[] = []
  for await (const b of source as AsyncIterable<TokenBatch>) {
    routings.push(softmaxTopK({ tokens: b.tokens, experts, ...(b.logits ? { logits: b.logits } : {}), ...(b.scores ? { scores: b.scores } : {}) }, topK, false))
    if (routings.length >= batches) break
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
