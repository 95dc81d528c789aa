/**
 * `moe-route workload`: generate a routing trace from a workload spec
 * (`moe-route workload --from mixtral:c4:layer7 --tokens 100000 --seed 1 --out trace.jsonl`),
 * or list the specs (`moe-route workload --list`).
 */
import { resolve } from 'node:path'
import type { Command } from 'commander'
import { ErrorCodes, MoeError } from '@moe-route/core'
import { DEFAULT_WORKLOAD, listWorkloadSpecs, workloadFromSpec, workloadSpecPatterns, writeJsonlTrace } from '@moe-route/workloads'
import { intOption, type CliContext } from '../context.js'
import { MAX_TOKENS_PER_BATCH } from '@moe-route/core'
import { createProgress, type Progress } from '../progress.js'

interface WorkloadFlags {
  from?: string
  tokens?: string
  seed?: string
  batch?: string
  out?: string
  list?: boolean
  progress?: boolean
}

/** Registers `workload`. */
export function register(program: Command, ctx: CliContext): void {
  program
    .command('workload')
    .description('write a routing trace (JSONL, one record per token) drawn from a realistic workload')
    .option('--from <spec>', `workload spec (default ${DEFAULT_WORKLOAD}); see --list`)
    .option('--tokens <n>', 'tokens to generate', '100000')
    .option('--seed <n>', 'random seed', '0')
    .option('--batch <n>', 'tokens generated per step (does not change the output)', '4096')
    .option('-o, --out <file>', 'output trace (.jsonl)')
    .option('--list', 'list the workload specs and exit')
    .option('--no-progress', 'no progress display (it only shows on a terminal)')
    .action(async (flags: WorkloadFlags) => {
      if (flags.list) {
        ctx.out(workloadSpecPatterns().join('\n'))
        ctx.out(`(${listWorkloadSpecs().length} recorded specs; default ${DEFAULT_WORKLOAD})`)
        return
      }
      if (!flags.out) throw new MoeError(ErrorCodes.INPUT_INVALID, '--out <file.jsonl> is required', { path: '--out' })
      if (!/\.(jsonl|ndjson)$/i.test(flags.out)) {
        throw new MoeError(ErrorCodes.INPUT_INVALID, `--out must be a .jsonl file, got ${flags.out}`, { path: '--out' })
      }
      const spec = flags.from ?? DEFAULT_WORKLOAD
      const workload = workloadFromSpec(spec)
      const tokens = intOption(flags.tokens, '--tokens', 1) as number
      const seed = intOption(flags.seed, '--seed', 0, Number.MAX_SAFE_INTEGER) as number
      const tokensPerBatch = intOption(flags.batch, '--batch', 1, MAX_TOKENS_PER_BATCH) as number
      const layer = Number(/layer(\d+)$/.exec(spec)?.[1] ?? 0)
      const file = resolve(ctx.cwd, flags.out)
      const t0 = performance.now()
      const progress = createProgress(ctx, flags.progress !== false, tokens, 'tokens', { label: `writing ${flags.out}` })
      let n: number
      try {
        n = await writeJsonlTrace(file, ticking(workload.records({ tokensPerBatch, tokens, seed, layer }), progress))
      } finally {
        progress.stop()
      }
      const ms = performance.now() - t0
      ctx.out(`${flags.out}: ${n} records of ${workload.spec} (${workload.experts} experts, top-${workload.topK}, seed ${seed}) in ${(ms / 1000).toFixed(2)} s`)
      ctx.out(workload.description)
    })
}

/** Passes records through, ticking the bar every 1,000 (one record per token). */
function* ticking<T>(records: Iterable<T>, progress: Progress): Iterable<T> {
  let n = 0
  for (const r of records) {
    yield r
    if (++n % 1000 === 0) progress.tick(1000)
  }
}
