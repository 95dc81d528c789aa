/**
 * Routings whose full gate-score matrix is made only when something reads it. A producer
 * that knows each token's scores cheaply per row (a workload generator, a trace of expert ids)
 * gives a {@link ScoreRows} source and the scores of the routed pairs; consumers that need only
 * the routed pairs' scores ({@link pairScores}) or a few rows ({@link scoreRow}) never pay for
 * the tokens × experts matrix, and `routing.scores` still works for everyone else (made on
 * first read, then kept).
 */
import { ErrorCodes, MoeError } from '../errors.js'
import type { Routing } from '../types.js'
import { assertLength, type RoutingInit } from './routing.js'

/** Gate scores made one token row at a time. Pure: the same token always gets the same row. */
export interface ScoreRows {
  readonly experts: number
  /** Writes the `experts` scores of token `token` into `out[offset .. offset+experts)`. */
  row(token: number, out: Float32Array, offset: number): void
}

const ROWS = Symbol.for('@moe-route/core:score-rows')
const PAIRS = Symbol.for('@moe-route/core:pair-scores')

interface PairScores {
  /** The expertIds array the scores are aligned with (a derived routing with other ids must not use them). */
  readonly ids: Int32Array
  readonly values: Float32Array
}

interface LazyParts {
  [ROWS]?: { source: ScoreRows; matrix: Float32Array | null }
  [PAIRS]?: PairScores
}

/**
 * Builds a routing whose `scores` are made from `rows` on first read (then kept). `pairScores`
 * (tokens × slots, aligned with `expertIds`, 0 for empty slots) must equal the rows' values
 * at the routed experts; the exported `pairScores(routing)` returns it without making the matrix.
 * @example
 * const r = lazyScoresRouting({ tokens, experts, topK, expertIds, weights, normalizeTopK: true }, rows, top)
 * pairScores(r) // no tokens × experts allocation
 */
export function lazyScoresRouting(init: Omit<RoutingInit, 'scores'>, rows: ScoreRows, pairScores: Float32Array): Routing {
  const slots = init.slots ?? init.topK
  if (rows.experts !== init.experts) throw new MoeError(ErrorCodes.SHAPE_MISMATCH, `score rows have ${rows.experts} experts, the routing ${init.experts}`)
  if (pairScores.length !== init.tokens * slots) throw new MoeError(ErrorCodes.SHAPE_MISMATCH, `pairScores has ${pairScores.length} elements, expected ${init.tokens * slots}`)
  // createRouting's checks (tokens, k ≤ E, lengths, ids) without a scores matrix to check
  if (init.topK > init.experts) throw new MoeError(ErrorCodes.TOPK_EXCEEDS_EXPERTS, `topK ${init.topK} exceeds experts ${init.experts}`)
  assertLength(init.expertIds, init.tokens * slots, 'expertIds')
  assertLength(init.weights, init.tokens * slots, 'weights')
  if (init.sourceDevice) assertLength(init.sourceDevice, init.tokens, 'sourceDevice')
  if (!Number.isInteger(init.tokens) || init.tokens < 0) throw new MoeError(ErrorCodes.INPUT_INVALID, `tokens must be a non-negative integer, got ${init.tokens}`)
  for (let i = 0; i < init.expertIds.length; i++) {
    const e = init.expertIds[i]
    if (e < -1 || e >= init.experts) throw new MoeError(ErrorCodes.INPUT_INVALID, `expert id ${e} at token ${Math.floor(i / slots)} is outside 0..${init.experts - 1}`, { record: Math.floor(i / slots) })
  }
  const routingFields: Omit<Routing, 'scores'> = { ...init, slots }
  if (!init.sourceDevice) delete (routingFields as { sourceDevice?: Int32Array }).sourceDevice
  return attach(routingFields, { source: rows, matrix: null }, { ids: init.expertIds, values: pairScores })
}

function attach(fields: Omit<Routing, 'scores'>, state: { source: ScoreRows; matrix: Float32Array | null }, pairs: PairScores | undefined): Routing {
  const out = { ...fields } as Routing & LazyParts
  Object.defineProperty(out, 'scores', {
    enumerable: true,
    configurable: true,
    get(): Float32Array {
      if (!state.matrix) {
        const E = state.source.experts
        const m = new Float32Array(fields.tokens * E)
        for (let t = 0; t < fields.tokens; t++) state.source.row(t, m, t * E)
        state.matrix = m
      }
      return state.matrix
    },
  })
  Object.defineProperty(out, ROWS, { value: state, enumerable: false })
  if (pairs) Object.defineProperty(out, PAIRS, { value: pairs, enumerable: false })
  return out
}

/** Fields a policy changes when it derives a routing from another (same tokens and scores). */
export interface RoutingChanges {
  readonly slots: number
  readonly expertIds: Int32Array
  readonly weights: Float32Array
  /** Scores of the new pairs (aligned with `expertIds`), when the policy has them at hand. */
  readonly pairScores?: Float32Array
}

/**
 * A routing with new pairs and everything else (tokens, experts, scores, source devices) of
 * `base`. Unlike `{ ...base, ... }` it keeps lazily made scores lazy.
 */
export function deriveRouting(base: Routing, changes: RoutingChanges): Routing {
  const state = (base as LazyParts)[ROWS]
  const inherited = (base as LazyParts)[PAIRS]
  const pairs = changes.pairScores ? { ids: changes.expertIds, values: changes.pairScores } : inherited && inherited.ids === changes.expertIds ? inherited : undefined
  if (!state || state.matrix) {
    const out = { ...base, slots: changes.slots, expertIds: changes.expertIds, weights: changes.weights }
    if (pairs) Object.defineProperty(out, PAIRS, { value: pairs, enumerable: false })
    if (state) Object.defineProperty(out, ROWS, { value: state, enumerable: false })
    return out
  }
  const fields: Record<string, unknown> = {}
  for (const key of Object.keys(base)) if (key !== 'scores') fields[key] = (base as unknown as Record<string, unknown>)[key]
  Object.assign(fields, { slots: changes.slots, expertIds: changes.expertIds, weights: changes.weights })
  return attach(fields as unknown as Omit<Routing, 'scores'>, state, pairs)
}

/** True when reading `routing.scores` would not make anything (plain routings, or lazy ones already made). */
export function scoresMaterialized(routing: Routing): boolean {
  const state = (routing as LazyParts)[ROWS]
  return !state || state.matrix !== null
}

/**
 * The gate score of every slot (tokens × slots, aligned with `expertIds`; 0 for empty slots):
 * the producer's copy when it has one for these ids, else gathered from `routing.scores`.
 */
export function pairScores(routing: Routing): Float32Array {
  const p = (routing as LazyParts)[PAIRS]
  if (p && p.ids === routing.expertIds) return p.values
  const { tokens, slots, experts, expertIds } = routing
  const state = (routing as LazyParts)[ROWS]
  const out = new Float32Array(tokens * slots)
  if (state && !state.matrix) {
    const row = new Float32Array(experts)
    for (let t = 0; t < tokens; t++) {
      let loaded = false
      for (let j = 0; j < slots; j++) {
        const e = expertIds[t * slots + j]
        if (e < 0) continue
        if (!loaded) {
          state.source.row(t, row, 0)
          loaded = true
        }
        out[t * slots + j] = row[e]
      }
    }
  } else {
    const scores = routing.scores
    for (let i = 0; i < out.length; i++) {
      const e = expertIds[i]
      if (e >= 0) out[i] = scores[Math.floor(i / slots) * experts + e]
    }
  }
  if (Object.isExtensible(routing)) Object.defineProperty(routing, PAIRS, { value: { ids: expertIds, values: out }, enumerable: false, configurable: true })
  return out
}

/**
 * The E scores of one token: a view of `routing.scores` when the matrix exists, else the row
 * made into `out` (length ≥ E) from the routing's score source, without making the matrix.
 */
export function scoreRow(routing: Routing, token: number, out?: Float32Array): Float32Array {
  const E = routing.experts
  const state = (routing as LazyParts)[ROWS]
  if (state && !state.matrix) {
    const row = out ?? new Float32Array(E)
    state.source.row(token, row, 0)
    return row.length === E ? row : row.subarray(0, E)
  }
  return routing.scores.subarray(token * E, token * E + E)
}
