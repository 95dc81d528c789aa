/**
 * The workload contract: a seeded source of routing for one MoE layer, as token batches
 * (core `TokenBatch` with gate `scores`), as raw choices, or as trace records.
 */
import { lazyScoresRouting, mixSeed, type Routing, type TokenBatch } from '@moe-route/core'
import { invalid } from '../io/errors.js'
import type { TraceRecord } from '../jsonl/jsonl.js'
import type { GateScoreOptions } from './gate-scores.js'
import { ScoreModel, TokenRandom } from './score-model.js'

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
  /**
   * Index of the first token of the stream to produce (default 0): a run can start anywhere
   * and makes the same tokens as a run from 0 would there (`tokens`/`batches` count from it).
   */
  readonly startToken?: number
}

/** Options of {@link Workload.routings}. */
export interface WorkloadRoutingOptions extends WorkloadRunOptions {
  /** The router's convention for the weights (default: the workload's {@link Workload.normalizeTopK}). */
  readonly normalizeTopK?: boolean
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

/**
 * A draw of one token's k experts; `next` writes them in slot order. It may keep state (a
 * replay position); `seek` moves that state to a token of the stream. `random` is positioned
 * at the token's own draws before every call.
 */
export interface TokenSampler {
  next(random: () => number, out: Int32Array, offset: number): void
  /**
   * Optional batch form of `next` for speed: tokens `first .. first+count` into `out`, each
   * drawn exactly as `next` would from a {@link TokenRandom} positioned at (`stream`, token).
   */
  fill?(stream: number, first: number, count: number, out: Int32Array): void
  /** Moves to token `token` of the stream (a stateless sampler gives a no-op; without `seek`, runs that start later draw and discard the tokens before). */
  seek?(token: number): void
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
  /**
   * The batches as core routings, the router's output: expert ids (slot order, best first),
   * weights and the routed pairs' scores are made per token in O(k); the full `scores` matrix
   * is made only if something reads it (see core `lazyScoresRouting`). The same tokens as
   * {@link Workload.batches} routed by softmax-top-k.
   */
  routings(options: WorkloadRoutingOptions): Iterable<Routing>
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
 * Builds a {@link Workload} from a definition. Every token's draws come from its own
 * counter-based streams (choices, scores, score-row order) keyed by its index in the stream,
 * so the token stream does not depend on `tokensPerBatch` (batch sizes only regroup the same
 * tokens) and any range of it can be made on its own (`startToken`), e.g. by a worker thread.
 */
export function createWorkload(def: WorkloadDefinition): Workload {
  const { experts, topK, normalizeTopK } = def
  /** Batches of expert ids, each token drawn from its own position of the choice stream. */
  function* draws(o: WorkloadRunOptions): Generator<RoutingChoices> {
    checkRun(o)
    const seed = o.seed ?? 0
    const start = o.startToken ?? 0
    if (!Number.isInteger(start) || start < 0) throw invalid(`startToken must be a non-negative integer, got ${start}`, { path: 'startToken' })
    const sampler = def.sampler(seed)
    const stream = mixSeed(seed, 0x636830) // "ch0"
    const random = new TokenRandom()
    if (start > 0) {
      if (sampler.seek) sampler.seek(start)
      else {
        const scratch = new Int32Array(topK)
        for (let t = 0; t < start; t++) {
          random.at(stream, t)
          sampler.next(random.next, scratch, 0)
        }
      }
    }
    let produced = 0
    for (let b = 0; ; b++) {
      if (o.batches !== undefined && b >= o.batches) return
      const left = o.tokens === undefined ? o.tokensPerBatch : Math.min(o.tokensPerBatch, o.tokens - produced)
      if (left <= 0) return
      const expertIds = new Int32Array(left * topK)
      if (sampler.fill) sampler.fill(stream, start + produced, left, expertIds)
      else {
        for (let t = 0; t < left; t++) {
          random.at(stream, start + produced + t)
          sampler.next(random.next, expertIds, t * topK)
        }
      }
      yield { id: (o.firstBatchId ?? 0) + b, tokens: left, firstToken: start + produced, expertIds }
      produced += left
    }
  }
  // one score model per gate setting: its tail cache serves every run of this workload
  const models = new Map<string, ScoreModel>()
  const modelFor = (gate: GateScoreOptions = {}) => {
    const key = `${gate.logitStd ?? ''}|${gate.minGap ?? ''}`
    let m = models.get(key)
    if (!m) models.set(key, (m = new ScoreModel(experts, topK, gate)))
    return m
  }
  function* routings(o: WorkloadRoutingOptions): Generator<Routing> {
    const seed = o.seed ?? 0
    const normalize = o.normalizeTopK ?? normalizeTopK
    const model = modelFor(o.gate)
    const scoreStream = mixSeed(seed, 0x736330) // "sc0"
    const rowStream = mixSeed(seed, 0x726f77) // "row"
    for (const c of draws(o)) {
      const T = c.tokens
      const pairs = new Float32Array(T * topK)
      const weights = new Float32Array(T * topK)
      const keys = new Int32Array(T)
      const factors = new Float64Array(T)
      model.fill(T, c.firstToken, scoreStream, normalize, pairs, weights, keys, factors)
      const rows = model.rows(c.expertIds, pairs, keys, factors, rowStream, c.firstToken)
      yield lazyScoresRouting({ tokens: T, experts, topK, expertIds: c.expertIds, weights, normalizeTopK: normalize }, rows, pairs)
    }
  }
  function* batchesSync(o: WorkloadRunOptions): Generator<TokenBatch> {
    let b = o.firstBatchId ?? 0
    for (const r of routings(o)) yield { id: b++, tokens: r.tokens, scores: r.scores }
  }
  return {
    spec: def.spec,
    description: def.description,
    experts,
    topK,
    normalizeTopK,
    targetLoad: def.targetLoad,
    choices: draws,
    routings,
    batchesSync,
    async *batches(o) {
      yield* batchesSync(o)
    },
    *records(o) {
      const layer = o.layer ?? 0
      let first = o.startToken ?? 0
      for (const r of routings(o)) {
        for (let t = 0; t < r.tokens; t++) {
          yield {
            layer,
            token: first + t,
            experts: Array.from(r.expertIds.subarray(t * topK, (t + 1) * topK)),
            weights: Array.from(r.weights.subarray(t * topK, (t + 1) * topK)),
          }
        }
        first += r.tokens
      }
    },
  }
}
