/**
 * Test helpers for policy and plugin authors (`@moe-route/core/testing`).
 * For the full conformance suite, see `@moe-route/testkit`.
 */
import { createRouting, softmaxRows } from '../routing/routing.js'
import { softmaxTopK } from '../builtins/softmax-top-k.js'
import type { Routing } from '../types.js'
import { mulberry32, normal } from '../util/rng.js'
import { contiguousPlacement } from '../builtins/contiguous.js'
import type { PlacementMap } from '../placement/placement.js'
import type { PolicyContext } from '../policy/policy.js'

/** Seeded random logits (normal(0, std)), tokens × experts. */
export function randomLogits(tokens: number, experts: number, seed = 1, std = 1): Float32Array {
  const n = normal(mulberry32(seed))
  const out = new Float32Array(tokens * experts)
  for (let i = 0; i < out.length; i++) out[i] = n() * std
  return out
}

/**
 * A routing from score rows (each row: E probabilities, or logits if `logits` is set),
 * routed with softmax-top-k.
 * @example
 * const r = routingFromRows([[0.5, 0.3, 0.2], [0.1, 0.1, 0.8]], { topK: 1 })
 */
export function routingFromRows(
  rows: readonly (readonly number[])[],
  options: { topK: number; normalizeTopK?: boolean; logits?: boolean; sourceDevice?: readonly number[]; decode?: boolean },
): Routing {
  const experts = rows[0]?.length ?? 0
  const flat = new Float32Array(rows.flat())
  const tokens = rows.length
  const scores = options.logits ? softmaxRows(flat, tokens, experts) : flat
  return softmaxTopK(
    {
      tokens,
      experts,
      scores,
      ...(options.sourceDevice ? { sourceDevice: Int32Array.from(options.sourceDevice) } : {}),
      ...(options.decode ? { decode: true } : {}),
    },
    options.topK,
    options.normalizeTopK ?? false,
  )
}

/** A seeded random routing (random logits → softmax → top-k). */
export function randomRouting(tokens: number, experts: number, topK: number, seed = 1, normalizeTopK = false): Routing {
  const logits = randomLogits(tokens, experts, seed, 1.5)
  return softmaxTopK({ tokens, experts, logits }, topK, normalizeTopK)
}

/** A PolicyContext for tests: contiguous placement over `devices`, seeded random. */
export function policyContext(experts: number, devices = 1, seed = 1, placement?: PlacementMap): PolicyContext {
  return { placement: placement ?? contiguousPlacement(experts, devices), batchId: 0, random: mulberry32(seed) }
}

/** Re-exported for building routings by hand in tests. */
export { createRouting }
