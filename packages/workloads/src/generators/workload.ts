/**
 * The workload contract: a seeded source of routing for one MoE layer, as token batches
 * (core `TokenBatch` with gate `scores`), as raw choices, or as trace records.
 */
import { mixSeed, mulberry32, type TokenBatch } from '@moe-route/core'
import { invalid } from '../io/errors.js'
import type { TraceRecord } from '../jsonl/jsonl.js'
import { synthesizeScores, weightsFromScores, type GateScoreOptions } from './gate-scores.js'

/** How much to generate. Without `batches` or `tokens` the stream is endless. */
export interface WorkloadRunOptions {
  /** Tokens per batch (the last batch may be shorter when `tokens` is not a multiple). */
  readonly tokensPerBatch: number
  /** Stop after this many batches. */
  readonly batches?: number
  /** Stop after this many tokens in all. */
  readonly tokens?: number
  /** Seed of every random draw (default 0). Same seed, same spec → same stream. */
  readonly seed?: number
  /** Gate-score synthesis options. */
  readonly gate?: GateScoreOptions
  /** Id of the first batch (default 0); later batches count up. */
  readonly firstBatchId?: number
}

/** One batch of routing choices before scores are attached. */
export interface RoutingChoices {
  readonly id: number
  readonly tokens: number
  /** Index of the first token of the batch within the stream. */
  readonly firstToken: number
  /** tokens × topK expert ids in slot order (slot 0 = highest gate score). */
  readonly expertIds: Int32Array
}

/** A draw of one token's k experts; `next` writes them in slot order. Stateful (replay position). */
export interface TokenSampler {
  next(random: () => number, out: Int32Array, offset: number): void
}

/** A seeded workload for one MoE layer. */
export interface Workload {
  /** The spec it was made from, e.g. `mixtral:c4:layer7`. */
  readonly spec: string
  /** One line on what it is and where its statistics come from. */
  readonly description: string
  readonly experts: number
  readonly topK: number
  /** Whether the model renormalises its top-k weights (Mixtral, LLaMA-MoE: true; OLMoE: false). */
  readonly normalizeTopK: boolean
  /** Expected per-expert share of pairs (sums to 1): the recorded load the generator targets. */
  readonly targetLoad: readonly number[]
  /** Batches with gate scores, as an async iterable (what `MoeEngine`/`TokenStream` consume). */
  batches(options: WorkloadRunOptions): AsyncIterable<TokenBatch>
  /** The same batches, synchronously. */
  batchesSync(options: WorkloadRunOptions): Iterable<TokenBatch>
  /** Just the expert choices (cheaper: no scores). The same draws as {@link Workload.batches}. */
  choices(options: WorkloadRunOptions): Iterable<RoutingChoices>
  /** Trace records (`layer` as given) with weights taken from the synthesized scores. */
  records(options: WorkloadRunOptions & { readonly layer?: number }): Iterable<TraceRecord>
}

/** What a generator supplies to {@link createWorkload}. */
export interface WorkloadDefinition {
  readonly spec: string
  readonly description: string
  readonly experts: number
  readonly topK: number
  readonly normalizeTopK: boolean
  readonly targetLoad: readonly number[]
  /** A fresh sampler for a run with this seed. */
  sampler(seed: number): TokenSampler
}

function checkRun(o: WorkloadRunOptions): void {
  if (!Number.isInteger(o.tokensPerBatch) || o.tokensPerBatch < 1) throw invalid(`tokensPerBatch must be a positive integer, got ${o.tokensPerBatch}`, { path: 'tokensPerBatch' })
  if (o.batches !== undefined && (!Number.isInteger(o.batches) || o.batches < 0)) throw invalid(`batches must be a non-negative integer, got ${o.batches}`, { path: 'batches' })
  if (o.tokens !== undefined && (!Number.isInteger(o.tokens) || o.tokens < 0)) throw invalid(`tokens must be a non-negative integer, got ${o.tokens}`, { path: 'tokens' })
  if (o.seed !== undefined && !Number.isInteger(o.seed)) throw invalid(`seed must be an integer, got ${o.seed}`, { path: 'seed' })
}

/**
 * Builds a {@link Workload} from a definition. Draws come from two seeded streams (choices and
 * scores) that advance a fixed amount per token, so the token stream does not depend on
 * `tokensPerBatch`: batch sizes only regroup the same tokens.
 */
export function createWorkload(def: WorkloadDefinition): Workload {
  const { experts, topK, normalizeTopK } = def
  function* choices(o: WorkloadRunOptions): Generator<RoutingChoices> {
    checkRun(o)
    const seed = o.seed ?? 0
    const sampler = def.sampler(seed)
    const random = mulberry32(mixSeed(seed, 0x636830)) // "ch0"
    let produced = 0
    for (let b = 0; ; b++) {
      if (o.batches !== undefined && b >= o.batches) return
      const left = o.tokens === undefined ? o.tokensPerBatch : Math.min(o.tokensPerBatch, o.tokens - produced)
      if (left <= 0) return
      const expertIds = new Int32Array(left * topK)
      for (let t = 0; t < left; t++) sampler.next(random, expertIds, t * topK)
      yield { id: (o.firstBatchId ?? 0) + b, tokens: left, firstToken: produced, expertIds }
      produced += left
    }
  }
  function* scored(o: WorkloadRunOptions): Generator<{ c: RoutingChoices; scores: Float32Array }> {
    const random = mulberry32(mixSeed(o.seed ?? 0, 0x736330)) // "sc0"
    for (const c of choices(o)) yield { c, scores: synthesizeScores(c.tokens, experts, topK, c.expertIds, random, null, o.gate) }
  }
  function* batchesSync(o: WorkloadRunOptions): Generator<TokenBatch> {
    for (const { c, scores } of scored(o)) yield { id: c.id, tokens: c.tokens, scores }
  }
  return {
    spec: def.spec,
    description: def.description,
    experts,
    topK,
    normalizeTopK,
    targetLoad: def.targetLoad,
    choices,
    batchesSync,
    async *batches(o) {
      yield* batchesSync(o)
    },
    *records(o) {
      const layer = o.layer ?? 0
      for (const { c, scores } of scored(o)) {
        const w = weightsFromScores(scores, experts, topK, c.expertIds, normalizeTopK)
        for (let t = 0; t < c.tokens; t++) {
          yield {
            layer,
            token: c.firstToken + t,
            experts: Array.from(c.expertIds.subarray(t * topK, (t + 1) * topK)),
            weights: Array.from(w.subarray(t * topK, (t + 1) * topK)),
          }
        }
      }
    },
  }
}
