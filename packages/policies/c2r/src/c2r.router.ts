/**
 * Collaboration-constrained routing (C2R; Zhang et al., NAACL 2025; SPEC C.2): the top-1
 * expert is chosen freely, the other k − 1 only among the Top-T collaborators of that
 * expert, by score. Implemented from the official code (UNITES-Lab/c2r-moe, Qwen1.5-MoE
 * version): scores are the softmax over all E experts, weights the raw softmax
 * probabilities of the chosen experts, renormalised over them when `normalizeTopK`.
 * Quality parity needs a checkpoint fine-tuned with the constraint (SPEC E.13).
 */
import {
  assertFinite,
  assertLength,
  defineRouter,
  ErrorCodes,
  MoeError,
  softmaxRows,
  topKIndices,
  topKRouting,
  writeTopKPairs,
  type Router,
  type RouterInput,
  type Routing,
} from '@moe-route/core'
import { c2rStage } from './c2r.wgsl.js'
import { CORE_RANGE, PACKAGE_NAME, PACKAGE_VERSION } from './meta.js'

/** Parameters of {@link c2rRoute}. */
export interface C2rParams {
  readonly topK: number
  /** Collaborators each top-1 expert may pair with (k − 1 ≤ T ≤ E − 1; see {@link checkTopT}). */
  readonly topT: number
  /**
   * Per expert, its collaborators by descending co-activation, from a profile
   * (`profile.layers[l].lists`) or an official config's `collaborative_list[l]` (E entries,
   * the expert itself last: fine, only the first T are read and they must not name it).
   */
  readonly collaborators: readonly (readonly number[])[]
  readonly normalizeTopK: boolean
}

/** Scores of a router input: given probabilities, or the softmax of the logits. */
export function routerScores(input: RouterInput): Float32Array {
  const { tokens, experts } = input
  if (input.scores) {
    assertLength(input.scores, tokens * experts, 'scores')
    assertFinite(input.scores, experts, 'scores')
    return input.scores
  }
  if (input.logits) {
    assertLength(input.logits, tokens * experts, 'logits')
    assertFinite(input.logits, experts, 'logits')
    return softmaxRows(input.logits, tokens, experts)
  }
  throw new MoeError(ErrorCodes.INPUT_INVALID, 'router input has neither logits nor scores')
}

/**
 * Checks T against k − 1 ≤ T ≤ E − 1 and throws `MOE_ROUTE_ERR_INPUT_INVALID` (path `/topT`,
 * `details.validTopT = { min, max }`) outside it, saying what the official code does there:
 * - T < k − 1: the Top-T list cannot fill the other k − 1 slots. The official Qwen1.5-MoE code
 *   asserts `top_t >= top_k - 1`; the official LLaMA-MoE code raises for 2 ≤ T < k (it asks
 *   `topk(k)` of T scores, so it also fails at T = k − 1 when k ≥ 3) and for T ≤ 1 pairs the
 *   top-1 with the first min(k, 3) − 1 list entries whatever their scores.
 * - T ≥ E: an expert has only E − 1 collaborators. The official lists hold E entries with the
 *   expert itself last, so at T = E the official code offers the top-1 expert as its own
 *   collaborator and, as it has the highest score, selects it twice (T > E slices the same E).
 *   T = E − 1 is already unconstrained top-k.
 */
export function checkTopT(topT: number, topK: number, experts: number): void {
  const min = topK - 1
  const max = experts - 1
  const details = { path: '/topT', validTopT: { min, max } }
  if (!Number.isInteger(topT)) throw new MoeError(ErrorCodes.INPUT_INVALID, `topT must be an integer in ${min}..${max} (k − 1 … E − 1), got ${topT}`, details)
  if (topT < min) {
    throw new MoeError(
      ErrorCodes.INPUT_INVALID,
      `topT ${topT} is below k − 1 = ${min}: ${topT} collaborators cannot fill the other ${min} slots (the official Qwen code asserts top_t ≥ k − 1; valid: ${min}..${max})`,
      details,
    )
  }
  if (topT > max) {
    throw new MoeError(
      ErrorCodes.INPUT_INVALID,
      `topT ${topT} exceeds E − 1 = ${max}: an expert has only ${max} collaborators (at T ≥ E the official code selects the top-1 expert twice; T = ${max} is unconstrained top-k; valid: ${min}..${max})`,
      details,
    )
  }
}

/** Checks T (see {@link checkTopT}) and collaborator lists; throws MOE_ROUTE_ERR_INPUT_INVALID naming the expert. */
export function checkCollaborators(collaborators: readonly (readonly number[])[], experts: number, topK: number, topT: number): void {
  checkTopT(topT, topK, experts)
  if (collaborators.length !== experts) {
    throw new MoeError(ErrorCodes.SHAPE_MISMATCH, `collaborator lists cover ${collaborators.length} experts, expected ${experts}`, { path: '/collaborators' })
  }
  collaborators.forEach((list, e) => {
    if (list.length < topT) throw new MoeError(ErrorCodes.INPUT_INVALID, `expert ${e} lists ${list.length} collaborators, fewer than topT ${topT}`, { path: `/collaborators/${e}` })
    const seen = new Set<number>()
    for (let i = 0; i < topT; i++) {
      const c = list[i]
      if (!Number.isInteger(c) || c < 0 || c >= experts || c === e || seen.has(c)) {
        throw new MoeError(ErrorCodes.INPUT_INVALID, `expert ${e}'s collaborator ${c} is invalid (out of range, itself, or repeated)`, { path: `/collaborators/${e}/${i}` })
      }
      seen.add(c)
    }
  })
}

/**
 * Routes one batch with C2R. O(T·(E + T_top·k)).
 * @example
 * const routing = c2rRoute({ tokens, experts: 60, logits }, { topK: 4, topT: 30, collaborators: profile.layers[l].lists, normalizeTopK: false })
 */
export function c2rRoute(input: RouterInput, params: C2rParams): Routing {
  const { tokens, experts } = input
  const { topK, topT, collaborators, normalizeTopK } = params
  if (topK > experts) throw new MoeError(ErrorCodes.TOPK_EXCEEDS_EXPERTS, `topK ${topK} exceeds experts ${experts}`)
  checkCollaborators(collaborators, experts, topK, topT)
  const scores = routerScores(input)
  const expertIds = new Int32Array(tokens * topK)
  const weights = new Float32Array(tokens * topK)
  const chosen = new Int32Array(topK)
  const rest = chosen.subarray(1)
  for (let t = 0; t < tokens; t++) {
    const o = t * experts
    let e1 = 0
    for (let e = 1; e < experts; e++) if (scores[o + e] > scores[o + e1]) e1 = e
    chosen[0] = e1
    // Top-(k−1) of the candidates by score (ties: lower expert id) into chosen[1..]
    topKIndices(scores, o, topT, topK - 1, rest, collaborators[e1])
    // no underflow cut here (minWeight 0): the C2R lowering computes the same weights
    writeTopKPairs(scores, o, chosen, topK, normalizeTopK, t, expertIds, weights)
  }
  return topKRouting(input, topK, expertIds, weights, scores, normalizeTopK)
}

/** Options of the `c2r` router plugin. */
export interface C2rRouterOptions {
  /** Top-T collaborators (paper: 30 for Qwen1.5-MoE's 60 experts, 5 for LLaMA-MoE's 8). */
  topT: number
  /** Per expert, collaborators by descending co-activation: `profile.layers[l].lists`. */
  collaborators: number[][]
  /** Renormalise the k weights; null = the model's `normalizeTopK`. */
  normalizeTopK: boolean | null
}

/** The `c2r` router plugin: top-1 free, the rest from its Top-T profiled collaborators. */
export const c2rRouter = defineRouter<C2rRouterOptions>({
  meta: {
    name: 'c2r',
    package: PACKAGE_NAME,
    version: PACKAGE_VERSION,
    core: CORE_RANGE,
    description: 'Collaboration-constrained routing (C2R): top-1 free, the other k−1 among its Top-T collaborators',
    schema: {
      type: 'object',
      properties: {
        topT: { type: 'integer', minimum: 0 },
        collaborators: { type: 'array', items: { type: 'array', items: { type: 'integer', minimum: 0 } } },
        normalizeTopK: { type: ['boolean', 'null'] },
      },
      required: ['topT', 'collaborators', 'normalizeTopK'],
      additionalProperties: false,
    },
    defaultOptions: { topT: 1, collaborators: [], normalizeTopK: null },
    device: ['wgsl'],
  },
  create(options, context): Router {
    const params: C2rParams = {
      topK: context.model.topK,
      topT: options.topT,
      collaborators: options.collaborators,
      normalizeTopK: options.normalizeTopK ?? context.model.normalizeTopK,
    }
    checkCollaborators(params.collaborators, context.model.experts, params.topK, params.topT)
    return { name: 'c2r', route: (input) => c2rRoute(input, params), lower: (ctx) => c2rStage(params, ctx) }
  },
})
