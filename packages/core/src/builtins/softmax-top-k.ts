/**
 * The built-in router: softmax over all experts, then top-k per token. Ties break by higher
 * score, then lower expert index. Weights are renormalised over the k chosen (Mixtral) or
 * kept as raw softmax probabilities (OLMoE, Qwen1.5-MoE). A pair whose weight is below
 * {@link MIN_PAIR_WEIGHT} is not routed (its slot is -1).
 */
import { ErrorCodes, MoeError } from '../errors.js'
import { defineRouter } from '../plugin/define.js'
import { assertFinite, assertLength, assertScores, softmaxRows, topKIndices, topKRouting, writeTopKPairs } from '../routing/routing.js'
import { CORE_VERSION } from '../version.js'
import { softmaxTopKStage } from './softmax-top-k.wgsl.js'
import type { Router, RouterInput } from '../router/router.js'

/**
 * Smallest combine weight a routed pair may have: the smallest normal f32 (2^-126). A pair
 * below it (a zero or subnormal softmax probability) is left out (slot -1), on the host and in
 * the GPU lowering alike (GPUs may flush subnormals to zero, so both sides cut at the same place).
 */
export const MIN_PAIR_WEIGHT = 2 ** -126

/** Options of the softmax-top-k router. */
export interface SoftmaxTopKOptions {
  /** Renormalise the k weights to sum to 1; null = the model's `normalizeTopK`. */
  normalizeTopK: boolean | null
}

/** Routes one batch with softmax + top-k (pure function behind the router plugin). */
export function softmaxTopK(input: RouterInput, topK: number, normalizeTopK: boolean): ReturnType<Router['route']> {
  const { tokens, experts } = input
  if (topK > experts) throw new MoeError(ErrorCodes.TOPK_EXCEEDS_EXPERTS, `topK ${topK} exceeds experts ${experts}`)
  let scores: Float32Array
  if (input.scores) {
    assertLength(input.scores, tokens * experts, 'scores')
    assertScores(input.scores, experts, 'scores')
    scores = input.scores
  } else if (input.logits) {
    assertLength(input.logits, tokens * experts, 'logits')
    assertFinite(input.logits, experts, 'logits')
    scores = softmaxRows(input.logits, tokens, experts)
  } else {
    throw new MoeError(ErrorCodes.INPUT_INVALID, 'router input has neither logits nor scores')
  }
  const expertIds = new Int32Array(tokens * topK)
  const weights = new Float32Array(tokens * topK)
  const idx = new Int32Array(topK)
  for (let t = 0; t < tokens; t++) {
    topKIndices(scores, t * experts, experts, topK, idx)
    // a pair whose f32 weight underflows (softmax of a far-off logit) adds nothing to the
    // output: it is not routed, so it takes no capacity and no compute
    writeTopKPairs(scores, t * experts, idx, topK, normalizeTopK, t, expertIds, weights, MIN_PAIR_WEIGHT)
  }
  return topKRouting(input, topK, expertIds, weights, scores, normalizeTopK)
}

/** The `softmax-top-k` router plugin (the default). */
export const softmaxTopKRouter = defineRouter<SoftmaxTopKOptions>({
  meta: {
    name: 'softmax-top-k',
    package: '@moe-route/core',
    version: CORE_VERSION,
    core: `^${CORE_VERSION}`,
    description: 'Softmax over all experts, then top-k (ties: higher score, lower expert id)',
    schema: {
      type: 'object',
      properties: { normalizeTopK: { type: ['boolean', 'null'] } },
      additionalProperties: false,
    },
    defaultOptions: { normalizeTopK: null },
    device: ['wgsl'],
  },
  create(options, context) {
    const normalize = options.normalizeTopK ?? context.model.normalizeTopK
    const { topK } = context.model
    return { name: 'softmax-top-k', route: (input) => softmaxTopK(input, topK, normalize), lower: (ctx) => softmaxTopKStage(normalize, ctx) }
  },
})
