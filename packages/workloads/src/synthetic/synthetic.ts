/**
 * Synthetic layer inputs: seeded weights and hidden states for runs, tests and demos where the
 * model's own cannot be had. Browser-safe (only core): also `@moe-route/workloads/synthetic`.
 *
 * Two generators, kept as they are because recorded results depend on their values:
 * - {@link batchHidden} / {@link withSyntheticHidden}: core's counter-based normals
 *   (`seededHidden` on stream `seededHiddenStream(seed, batchId)`), the values every backend's
 *   `syntheticHidden` makes where it computes; what `moe-route run` feeds its layer.
 * - `randomLayerWeights` / `randomHidden` (from `@moe-route/core/testing`, beside `randomLogits`):
 *   mulberry32 + Box–Muller streams, the fixtures of the backends' parity tests.
 */
import { seededHidden, seededHiddenStream, type Backend, type TokenBatch } from '@moe-route/core'

// seeded test fixtures: core/testing's (next to randomLogits), here with the rest of the synthetic inputs
export { randomHidden, randomLayerWeights, type RandomWeightsOptions } from '@moe-route/core/testing'

/** A batch's synthetic hidden states on the host: stream `seededHiddenStream(seed, batch.id)`. */
export function batchHidden(batch: Pick<TokenBatch, 'id' | 'tokens'>, hidden: number, seed: number): Float32Array {
  return seededHidden(batch.tokens, hidden, seededHiddenStream(seed, batch.id))
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
