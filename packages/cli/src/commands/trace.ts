/**
 * `moe-route trace stats <file>`: per-expert load and per-batch max/mean of one layer of a
 * trace (JSONL, .npy or safetensors), streamed.
 */
import { resolve } from 'node:path'
import type { Command } from 'commander'
import { ErrorCodes, MoeError } from '@moe-route/core'
import { traceStats, type TraceStats } from '@moe-route/workloads'
import { intOption, type CliContext } from '../context.js'

interface StatsFlags {
  batch: string
  experts?: string
  topK?: string
  layer?: string
  tensor?: string
  json?: boolean
}

function batchSizes(value: string): number[] {
  const sizes = value.split(',').map((s) => intOption(s.trim(), '--batch', 1) as number)
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
    .argument('<file>', 'trace file (.jsonl, .ndjson, .npy or .safetensors)')
    .option('--batch <sizes>', 'batch sizes for per-batch max/mean, comma-separated', '512,2048,8192')
    .option('--experts <n>', 'number of experts (JSONL: checks ids; default max id + 1)')
    .option('--top-k <n>', 'experts per token (required for .npy/.safetensors logits)')
    .option('--layer <n>', 'JSONL: layer to read (default the first); tensors [L×T×E]: layer index')
    .option('--tensor <name>', 'safetensors: tensor to read (default the only one)')
    .option('--json', 'print the statistics as JSON')
    .action(async (file: string, flags: StatsFlags) => {
      const stats = await traceStats(resolve(ctx.cwd, file), {
        batchSizes: batchSizes(flags.batch),
        experts: intOption(flags.experts, '--experts', 1),
        topK: intOption(flags.topK, '--top-k', 1),
        layer: intOption(flags.layer, '--layer', 0),
        tensor: flags.tensor,
      })
      ctx.out(flags.json ? JSON.stringify({ file, ...stats }, null, 2) : renderTraceStats(file, stats))
    })
}
