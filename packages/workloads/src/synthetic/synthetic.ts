/**
 * Synthetic layer inputs: seeded weights and hidden states for runs, tests and demos where the
 * model's own cannot be had. Browser-safe (only core): also `@moe-route/workloads/synthetic`.
 *
 * Two generators, kept as they are because recorded results depend on their values:
 * - {@link batchHidden} / {@link withSyntheticHidden}: core's counter-based normals
 *   (`seededNormals`, stream `seededHiddenStream(seed, batchId)`), the values a GPU backend's
 *   `syntheticHidden` makes on the device; what `moe-route run` feeds its layer.
 * - {@link randomLayerWeights} / {@link randomHidden}: mulberry32 + Box–Muller streams, the
 *   fixtures of the backends' parity tests.
 */
import { ErrorCodes, MoeError, mulberry32, normal, seededHiddenStream, seededNormals, type Backend, type ExpertWeights, type LayerWeights, type ModelShape, type TokenBatch } from '@moe-route/core'

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

/**
 * Hidden states of stream `stream` (tokens × hidden, normal(0, 1)): the values a backend's
 * `syntheticHidden(tokens, hidden, stream)` makes, here on the host.
 */
export function syntheticHidden(tokens: number, hidden: number, stream: number): Float32Array {
  return seededNormals(new Float32Array(tokens * hidden), stream, 1)
}

/** A batch's synthetic hidden states on the host: stream `seededHiddenStream(seed, batch.id)`. */
export function batchHidden(batch: Pick<TokenBatch, 'id' | 'tokens'>, hidden: number, seed: number): Float32Array {
  return syntheticHidden(batch.tokens, hidden, seededHiddenStream(seed, batch.id))
}

/**
 * The batch with synthetic hidden states added: made by `backend.syntheticHidden` where one is
 * given (a GPU backend makes them on the device: `deviceHidden`), else on the host ({@link batchHidden}).
 * The same seed gives the same values either way (f32 rounding aside).
 * @example
 * for await (const b of workload.routing()) await stream.write(await withSyntheticHidden(b, { hidden: 256, seed: 1 }))
 */
export async function withSyntheticHidden<B extends Pick<TokenBatch, 'id' | 'tokens'>>(
  batch: B,
  o: { readonly hidden: number; readonly seed: number; readonly backend?: Backend },
): Promise<B & Pick<TokenBatch, 'hidden' | 'deviceHidden'>> {
  if (o.backend?.syntheticHidden) {
    const h = await o.backend.syntheticHidden(batch.tokens, o.hidden, seededHiddenStream(o.seed, batch.id))
    return h instanceof Float32Array ? { ...batch, hidden: h } : { ...batch, deviceHidden: h }
  }
  return { ...batch, hidden: batchHidden(batch, o.hidden, o.seed) }
}
