/**
 * Test helpers for policy and plugin authors (`@moe-route/core/testing`).
 * For the full conformance suite, see `@moe-route/testkit`.
 */
import { createRouting, softmaxRows } from '../routing/routing.js'
import { softmaxTopK } from '../builtins/softmax-top-k.js'
import { ErrorCodes, MoeError } from '../errors.js'
import type { ExpertWeights, LayerWeights, ModelShape, Routing } from '../types.js'
import { mulberry32, normal } from '../util/rng.js'
import { contiguousPlacement } from '../builtins/contiguous.js'
import type { PlacementMap } from '../placement/placement.js'
import type { PolicyContext } from '../policy/policy.js'

/** Seeded random logits (normal(0, std)), tokens × experts. */
export function randomLogits(tokens: number, experts: number, seed = 1, std = 1): Float32Array {
  return seededNormalArray(tokens * experts, seed, std)
}

/** n draws of normal(0, std) from mulberry32(seed) (Box–Muller): the stream of every fixture here. */
function seededNormalArray(n: number, seed: number, std: number): Float32Array {
  const g = normal(mulberry32(seed))
  const a = new Float32Array(n)
  for (let i = 0; i < n; i++) a[i] = g() * std
  return a
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

/** Options of {@link randomLayerWeights}. */
export interface RandomWeightsOptions {
  /** Seed of the generator (default 1). */
  readonly seed?: number
  /** Standard deviation of every weight (default 0.02, as in HF initialisation). */
  readonly std?: number
  /** Standard deviation of the router weight (default `std`). */
  readonly routerStd?: number
}

/**
 * Every weight drawn from normal(0, std), seeded, in `nn.Linear` layout. Deterministic:
 * the same shape and seed give the same weights on every platform.
 * @example
 * const w = randomLayerWeights({ experts: 8, topK: 2, hidden: 64, intermediate: 224, normalizeTopK: true }, { seed: 7 })
 */
export function randomLayerWeights(shape: ModelShape, options: RandomWeightsOptions = {}): LayerWeights {
  const { experts, hidden: H, intermediate: I } = shape
  for (const [k, v] of Object.entries({ experts, hidden: H, intermediate: I })) {
    if (!Number.isInteger(v) || v < 1) throw new MoeError(ErrorCodes.INPUT_INVALID, `model.${k} must be a positive integer, got ${v}`, { path: `/model/${k}` })
  }
  const std = options.std ?? 0.02
  const seed = options.seed ?? 1
  const router = seededNormalArray(experts * H, seed * 7919 + 1, options.routerStd ?? std)
  const list: ExpertWeights[] = []
  for (let e = 0; e < experts; e++) {
    const s = seed * 7919 + 100 + e * 3
    list.push({ gate: seededNormalArray(I * H, s, std), up: seededNormalArray(I * H, s + 1, std), down: seededNormalArray(H * I, s + 2, std) })
  }
  return { shape, router, experts: list }
}

/** Seeded random hidden states, tokens × hidden, normal(0, std). */
export function randomHidden(tokens: number, hidden: number, seed = 1, std = 1): Float32Array {
  return seededNormalArray(tokens * hidden, seed ^ 0x5bd1e995, std)
}
