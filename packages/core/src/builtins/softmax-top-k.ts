/**
 * The built-in router: softmax over all experts, then top-k per token. Ties break by higher
 * score, then lower expert index. Weights are renormalised over the k chosen (Mixtral) or
 * kept as raw softmax probabilities (OLMoE, Qwen1.5-MoE).
 */
import { ErrorCodes, MoeError } from '../errors.js'
import { defineRouter } from '../plugin/define.js'
import { assertFinite, assertLength, createRouting, softmaxRows, topKIndices } from '../routing/routing.js'
import { CORE_VERSION } from '../version.js'
import { softmaxTopKStage } from './softmax-top-k.wgsl.js'
import type { Router, RouterInput } from '../router/router.js'

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
    assertFinite(input.scores, experts, 'scores')
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
    let sum = 0
    for (let j = 0; j < topK; j++) sum += scores[t * experts + idx[j]]
    for (let j = 0; j < topK; j++) {
      const s = scores[t * experts + idx[j]]
      expertIds[t * topK + j] = idx[j]
      weights[t * topK + j] = normalizeTopK ? (sum > 0 ? s / sum : 1 / topK) : s
    }
  }
  return createRouting({
    tokens,
    experts,
    topK,
    expertIds,
    weights,
    scores,
    normalizeTopK,
    ...(input.sourceDevice ? { sourceDevice: input.sourceDevice } : {}),
    ...(input.decode ? { decode: true } : {}),
  })
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
