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

/** Options of {@link routingFromChoices}. */
export interface ChoicesRoutingOptions {
  readonly experts: number
  readonly topK: number
  /** Seed of the score streams (default 0). */
  readonly seed?: number
  /** Index of the first token in its stream (its score draws are keyed by it; default 0). */
  readonly firstToken?: number
  /** The router's top-k convention for the weights (default true). */
  readonly normalizeTopK?: boolean
  /** Gate-score options (σ, minimum gap). */
  readonly gate?: GateScoreOptions
  /** A score model to reuse (its tail cache); must match experts, topK and gate. */
  readonly model?: ScoreModel
}

/**
 * A routing of given expert choices (tokens × k, slot order = rank, every slot filled): the
 * routed pairs' scores drawn in closed form ({@link ScoreModel}) so that the chosen experts are
 * the top-k in slot order, the router's weights from them, and the full score rows made only
 * when read. What a workload's `routings()` yields, and what a token-level trace of expert ids
 * becomes without a score matrix per batch.
 */
export function routingFromChoices(expertIds: Int32Array, o: ChoicesRoutingOptions): Routing {
  const { experts, topK } = o
  if (expertIds.length % topK !== 0) throw invalid(`expertIds has ${expertIds.length} elements, not a multiple of k = ${topK}`)
  const T = expertIds.length / topK
  // every slot filled with a distinct expert (the score model gives each chosen expert one of the top-k)
  const mark = new Int32Array(experts).fill(-1)
  for (let t = 0; t < T; t++) {
    for (let j = 0; j < topK; j++) {
      const e = expertIds[t * topK + j]
      if (!(e >= 0 && e < experts)) throw invalid(`token ${t} slot ${j}: expert id ${e} is outside 0..${experts - 1}`, { record: t })
      if (mark[e] === t) throw invalid(`token ${t} chooses expert ${e} twice`, { record: t })
      mark[e] = t
    }
  }
  return choicesRouting(expertIds, o)
}

/**
 * Samplers whose draws are valid by construction (k distinct ids in range per token): their
 * batches skip {@link routingFromChoices}'s per-pair check. Only this package's own samplers
 * are added (see `uniformWorkload`); a sampler from elsewhere is always checked.
 */
const exactSamplers = new WeakSet<WorkloadDefinition['sampler']>()

/** Marks a definition's sampler factory as making only valid draws (this package only; not exported from the index). */
export function exactSampler(factory: WorkloadDefinition['sampler']): WorkloadDefinition['sampler'] {
  exactSamplers.add(factory)
  return factory
}

/** {@link routingFromChoices} without the check of the ids. */
function choicesRouting(expertIds: Int32Array, o: ChoicesRoutingOptions): Routing {
  const { experts, topK } = o
  const T = expertIds.length / topK
  const seed = o.seed ?? 0
  const first = o.firstToken ?? 0
  const normalize = o.normalizeTopK ?? true
  const model = o.model ?? new ScoreModel(experts, topK, o.gate)
  const pairs = new Float32Array(T * topK)
  const weights = new Float32Array(T * topK)
  const keys = new Int32Array(T)
  const factors = new Float64Array(T)
  model.fill(T, first, mixSeed(seed, 0x736330) /* "sc0" */, normalize, pairs, weights, keys, factors)
  const rows = model.rows(expertIds, pairs, keys, factors, mixSeed(seed, 0x726f77) /* "row" */, first)
  return lazyScoresRouting({ tokens: T, experts, topK, expertIds, weights, normalizeTopK: normalize }, rows, pairs)
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
    const model = modelFor(o.gate)
    const normalize = o.normalizeTopK ?? normalizeTopK
    const make = exactSamplers.has(def.sampler) ? choicesRouting : routingFromChoices
    for (const c of draws(o)) yield make(c.expertIds, { experts, topK, seed: o.seed ?? 0, firstToken: c.firstToken, normalizeTopK: normalize, model })
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
