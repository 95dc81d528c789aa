/** Turns a config's `workload` into a stream of batches (spec generators or trace files). */
import { ErrorCodes, MoeError, type ResolvedConfig, type TokenBatch } from '@moe-route/core'
import * as workloads from '@moe-route/workloads'
import { resolve } from 'node:path'
import { DEFAULT_CONFIG } from './default-config.js'

/** An opened workload. */
export interface OpenedWorkload {
  readonly spec: string
  readonly description: string
  readonly batches: number
  readonly tokensPerBatch: number
  readonly seed: number
  readonly source: AsyncIterable<TokenBatch>
}

const TRACE_FILE = /\.(jsonl|npy|safetensors)$/i

/** Opens the workload of a config, checking that it matches the model shape. */
export async function openWorkload(config: ResolvedConfig, cwd: string): Promise<OpenedWorkload> {
  const w: NonNullable<ResolvedConfig['workload']> = config.workload ?? { source: workloads.DEFAULT_WORKLOAD }
  const tokensPerBatch = w.tokensPerBatch ?? 512
  const batches = w.batches ?? 16
  const seed = w.seed ?? config.seed
  const { experts, topK } = config.model
  if (TRACE_FILE.test(w.source)) {
    const file = resolve(cwd, w.source)
    const source = nonEmpty(workloads.traceBatches(file, { experts, topK, tokensPerBatch, batches, seed, ...(w.layer !== undefined ? { layer: w.layer } : {}) }), file, w.layer)
    return { spec: w.source, description: `trace ${file}`, batches, tokensPerBatch, seed, source }
  }
  const gen = workloads.workloadFromSpec(w.source)
  if (gen.experts !== experts || gen.topK !== topK) {
    throw new MoeError(
      ErrorCodes.SHAPE_MISMATCH,
      `workload ${w.source} routes ${gen.experts} experts top-${gen.topK}, but the model is ${experts} experts top-${topK}` +
        (w.source === DEFAULT_CONFIG.workload?.source ? ' (a config without a workload section runs the embedded default\'s: set workload.source to a spec or trace of this shape)' : ''),
      { path: '/workload/source' },
    )
  }
  return {
    spec: w.source,
    description: gen.description,
    batches,
    tokensPerBatch,
    seed,
    source: gen.batches({ tokensPerBatch, batches, seed }),
  }
}

/** The batches of a trace; a trace that yields none is MOE_ROUTE_ERR_INPUT_EMPTY (never a silent run of 0 batches). */
async function* nonEmpty(source: AsyncIterable<TokenBatch>, file: string, layer?: number): AsyncGenerator<TokenBatch> {
  let any = false
  for await (const b of source) {
    any = true
    yield b
  }
  if (!any) throw new MoeError(ErrorCodes.INPUT_EMPTY, `${file} holds no routing records${layer !== undefined ? ` for layer ${layer}` : ''}: nothing to run`, { path: '/workload/source', file })
}
