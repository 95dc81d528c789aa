/**
 * `moe-route trace stats <file>`: per-expert load and per-batch max/mean of one layer of a
 * trace (JSONL, .npy or safetensors), streamed; for an engine's routing record (vLLM, SGLang,
 * TensorRT-LLM, Megatron) per-layer per-expert counts of every layer. Both with the engines'
 * balance metrics under a placement (contiguous over --devices, or --placement).
 */
import { resolve } from 'node:path'
import type { Command } from 'commander'
import { ErrorCodes, MoeError, quantileSorted } from '@moe-route/core'
import { formatEngineMetrics, type EngineMetrics } from '@moe-route/policy-placement'
import { traceStats, type RoutingRecord, type TraceStats } from '@moe-route/workloads'
import { intOption, type CliContext } from '../context.js'
import { withActivity } from '../progress.js'
import { loadMetrics, metricsPlacement, openRecordIfAny, recordLoads, selectLayers } from '../record-source.js'
import { MAX_DEVICES, MAX_EXPERTS, MAX_LAYER, MAX_TOKENS_PER_BATCH, MAX_TOP_K } from '@moe-route/core'

interface StatsFlags {
  batch: string
  experts?: string
  topK?: string
  layer?: string
  tensor?: string
  devices: string
  placement?: string
  stepTokens?: string
  json?: boolean
  progress?: boolean
}

/** Statistics of one layer of an engine record. */
export interface RecordLayerStats {
  readonly layer: number
  readonly pairs: number
  /** Pairs per expert. */
  readonly load: number[]
  readonly maxMean: number
  readonly minMean: number
  /** Over the record's steps: mean, p95 and max of per-step max/mean expert load. */
  readonly perStep: { readonly steps: number; readonly meanMaxMean: number; readonly p95MaxMean: number; readonly maxMaxMean: number }
}

/** What `trace stats --json` prints for an engine record. */
export interface RecordStatsReport {
  readonly file: string
  readonly format: string
  readonly engine: string
  readonly kind: string
  readonly experts: number
  readonly topK: number | null
  readonly tokens: number | null
  readonly steps: number
  readonly ranks: number
  readonly meta: Readonly<Record<string, unknown>>
  readonly layers: RecordLayerStats[]
  /** null when the experts do not divide over --devices and no --placement is given. */
  readonly metrics: { readonly placement: string; readonly whole: EngineMetrics; readonly perStep: EngineMetrics | null } | null
}

function ratio(row: ArrayLike<number>): { sum: number; maxMean: number; minMean: number } {
  let sum = 0
  let max = 0
  let min = Infinity
  for (let e = 0; e < row.length; e++) {
    sum += row[e]
    max = Math.max(max, row[e])
    min = Math.min(min, row[e])
  }
  const mean = sum / row.length
  return { sum, maxMean: mean ? max / mean : 0, minMean: mean ? min / mean : 0 }
}

/** Per-layer statistics and engine metrics of an engine record. */
export async function recordStats(file: string, record: RoutingRecord, o: { layer?: number; devices: number; placement?: string; stepTokens?: number }): Promise<RecordStatsReport> {
  const loads = await recordLoads(record, o.stepTokens)
  const pick = selectLayers(record, o.layer)
  const layers = pick.map((i) => {
    const r = ratio(loads.total[i])
    const per = loads.steps.map((s) => ratio(s[i]).maxMean).sort((a, b) => a - b)
    const n = per.length
    return {
      layer: record.layers[i],
      pairs: r.sum,
      load: [...loads.total[i]],
      maxMean: r.maxMean,
      minMean: r.minMean,
      perStep: {
        steps: n,
        meanMaxMean: n ? per.reduce((a, b) => a + b, 0) / n : 0,
        p95MaxMean: n ? quantileSorted(per, 0.95) : 0,
        maxMaxMean: n ? per[n - 1] : 0,
      },
    }
  })
  const picked = { layers: pick.map((i) => record.layers[i]), total: pick.map((i) => loads.total[i]), steps: loads.steps.map((s) => pick.map((i) => s[i])), stepTokens: loads.stepTokens }
  const placement = metricsPlacement(picked.layers, record.experts, o.devices, o.placement)
  const rows = placement && (placement.phy2log.length === 1 ? placement.phy2log : pick.map((i) => placement.phy2log[i]))
  return {
    file,
    format: record.format,
    engine: record.engine,
    kind: record.kind,
    experts: record.experts,
    topK: record.topK,
    tokens: record.tokens,
    steps: loads.steps.length,
    ranks: record.ranks,
    meta: record.meta,
    layers,
    metrics: placement && rows ? { placement: placement.label, ...loadMetrics(picked, { ...placement, layers: picked.layers, phy2log: rows }) } : null,
  }
}

/** Human-readable report of {@link RecordStatsReport}. */
export function renderRecordStats(r: RecordStatsReport): string {
  const lines = [
    `${r.file}: ${r.format} (${r.engine}, ${r.kind === 'tokens' ? 'token-level' : 'counts only'}), ${r.layers.length} layer(s), ${r.experts} experts, top-${r.topK ?? '?'}, ${r.tokens ?? 'unknown'} tokens, ${r.steps} steps, ${r.ranks} rank(s)`,
  ]
  for (const [k, v] of Object.entries(r.meta)) if (v !== null) lines.push(`  ${k}: ${String(v)}`)
  for (const l of r.layers) {
    lines.push(`layer ${l.layer}: ${l.pairs} pairs, max/mean ${l.maxMean.toFixed(3)}, min/mean ${l.minMean.toFixed(3)}; per step max/mean mean ${l.perStep.meanMaxMean.toFixed(3)}, p95 ${l.perStep.p95MaxMean.toFixed(3)}, max ${l.perStep.maxMaxMean.toFixed(3)}`)
    lines.push(`  load: ${l.load.join(' ')}`)
  }
  if (!r.metrics) lines.push(`engine metrics: ${r.experts} experts do not divide over the devices; pass --devices or --placement`)
  else {
    lines.push(formatEngineMetrics(r.metrics.whole, `whole record, ${r.metrics.placement}`))
    if (r.metrics.perStep) lines.push(formatEngineMetrics(r.metrics.perStep, `mean over ${r.steps} steps, ${r.metrics.placement}`))
  }
  return lines.join('\n')
}

function batchSizes(value: string): number[] {
  const sizes = value.split(',').map((s) => intOption(s.trim(), '--batch', 1, MAX_TOKENS_PER_BATCH) as number)
  if (sizes.length === 0) throw new MoeError(ErrorCodes.INPUT_INVALID, '--batch needs at least one size', { path: '--batch' })
  return sizes
}

/** Human-readable report of {@link TraceStats}. */
export function renderTraceStats(file: string, s: TraceStats): string {
  const lines: string[] = []
  const layer = s.layer === null ? '' : `, layer ${s.layer}`
  lines.push(`${file}: ${s.format}${layer}, ${s.tokens} tokens, ${s.pairs} pairs, ${s.experts} experts, top-${s.topK}`)
  const mean = s.pairs / s.experts
  lines.push('expert  pairs  share  ×mean')
  s.load.forEach((l, e) => {
    lines.push(`${String(e).padStart(6)}  ${String(l).padStart(5)}  ${((100 * l) / (s.pairs || 1)).toFixed(2).padStart(5)}%  ${(mean ? l / mean : 0).toFixed(2)}`)
  })
  lines.push(`whole trace: max/mean ${s.maxMean.toFixed(3)}, min/mean ${s.minMean.toFixed(3)}`)
  for (const b of s.perBatch) {
    lines.push(
      b.batches === 0
        ? `batch ${b.batchSize}: no full batch`
        : `batch ${b.batchSize}: ${b.batches} batches, max/mean mean ${b.meanMaxMean.toFixed(3)}, p95 ${b.p95MaxMean.toFixed(3)}, max ${b.maxMaxMean.toFixed(3)}`,
    )
  }
  return lines.join('\n')
}

/** Registers `trace` and its subcommand `stats`. */
export function register(program: Command, ctx: CliContext): void {
  const trace = program.command('trace').description('inspect routing traces (JSONL, .npy, safetensors)')
  trace
    .command('stats')
    .description('per-expert load and per-batch max/mean expert load of one layer of a trace')
    .argument('<file>', 'trace (.jsonl, .ndjson, .npy, .safetensors) or engine record (vLLM .npy/.safetensors/.json, SGLang .pt, TensorRT-LLM stats dir, Megatron trace dir or .jsonl)')
    .option('--batch <sizes>', 'batch sizes for per-batch max/mean, comma-separated', '512,2048,8192')
    .option('--experts <n>', 'number of experts (JSONL: checks ids; default max id + 1)')
    .option('--top-k <n>', 'experts per token (required for .npy/.safetensors logits)')
    .option('--layer <n>', 'JSONL: layer to read (default the first); tensors [L×T×E]: layer index')
    .option('--tensor <name>', 'safetensors: tensor to read (default the only one)')
    .option('--devices <D>', 'devices (EP ranks) for the engines\' balance metrics', '8')
    .option('--placement <file>', 'placement file (SGLang, vLLM, TensorRT-LLM, EPLB) for the metrics (default contiguous)')
    .option('--step-tokens <n>', 'token-level records: tokens per step for per-step metrics (default 2048)')
    .option('--json', 'print the statistics as JSON')
    .option('--no-progress', 'no progress display (it only shows on a terminal)')
    .action((file: string, flags: StatsFlags) => withActivity(ctx, flags.progress !== false, `reading ${file}`, async () => {
      const path = resolve(ctx.cwd, file)
      const devices = intOption(flags.devices, '--devices', 1, MAX_DEVICES) as number
      const record = await openRecordIfAny(file, ctx.cwd, intOption(flags.experts, '--experts', 1, MAX_EXPERTS))
      if (record) {
        try {
          const r = await recordStats(file, record, {
            layer: intOption(flags.layer, '--layer', 0, MAX_LAYER),
            devices,
            ...(flags.placement ? { placement: resolve(ctx.cwd, flags.placement) } : {}),
            stepTokens: intOption(flags.stepTokens, '--step-tokens', 1, MAX_TOKENS_PER_BATCH),
          })
          ctx.out(flags.json ? JSON.stringify(r, null, 2) : renderRecordStats(r))
        } finally {
          await record.close()
        }
        return
      }
      const stats = await traceStats(path, {
        batchSizes: batchSizes(flags.batch),
        experts: intOption(flags.experts, '--experts', 1, MAX_EXPERTS),
        topK: intOption(flags.topK, '--top-k', 1, MAX_TOP_K),
        layer: intOption(flags.layer, '--layer', 0, MAX_LAYER),
        tensor: flags.tensor,
      })
      const layers = [stats.layer ?? 0]
      const placement = metricsPlacement(layers, stats.experts, Math.min(devices, stats.experts), flags.placement && resolve(ctx.cwd, flags.placement))
      const metrics = placement && { placement: placement.label, whole: loadMetrics({ layers, total: [Float64Array.from(stats.load)], steps: [], stepTokens: [] }, placement).whole }
      ctx.out(flags.json ? JSON.stringify({ file, ...stats, metrics }, null, 2) : metrics ? `${renderTraceStats(file, stats)}\n${formatEngineMetrics(metrics.whole, metrics.placement)}` : renderTraceStats(file, stats))
    }))
}
