/** Seeded random layer weights (the model weights cannot be downloaded here: tests and demos use these). */
import { ErrorCodes, MoeError, mulberry32, normal, type ExpertWeights, type LayerWeights, type ModelShape } from '@moe-route/core'

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
  const fill = (n: number, s: number, sd: number) => {
    const g = normal(mulberry32(s))
    const a = new Float32Array(n)
    for (let i = 0; i < n; i++) a[i] = g() * sd
    return a
  }
  const router = fill(experts * H, seed * 7919 + 1, options.routerStd ?? std)
  const list: ExpertWeights[] = []
  for (let e = 0; e < experts; e++) {
    const s = seed * 7919 + 100 + e * 3
    list.push({ gate: fill(I * H, s, std), up: fill(I * H, s + 1, std), down: fill(H * I, s + 2, std) })
  }
  return { shape, router, experts: list }
}

/** Seeded random hidden states, tokens × hidden, normal(0, std). */
export function randomHidden(tokens: number, hidden: number, seed = 1, std = 1): Float32Array {
  const g = normal(mulberry32(seed ^ 0x5bd1e995))
  const a = new Float32Array(tokens * hidden)
  for (let i = 0; i < a.length; i++) a[i] = g() * std
  return a
}
