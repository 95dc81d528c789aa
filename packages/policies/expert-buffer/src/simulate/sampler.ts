/**
 * Realistic cache traces from recorded routing statistics (expert-counts.json in
 * moe-route's data/routing, converted from allenai/OLMoE's routing outputs). Tokens are drawn
 * independently: each token picks its top-k distinct experts from the layer's recorded
 * popularity (sequential sampling without replacement, proportional to the top-k counts), and,
 * for the later layers, each rank-r choice follows the recorded cross-layer transition row of
 * the earlier layer's rank-r expert. This keeps per-layer skew and cross-layer correlation; it
 * does not keep document-level temporal locality (none is recorded per token).
 */
import { mulberry32 } from '@moe-route/core'
import { StoreErrorCodes, storeError } from '../errors.js'
import type { CacheTrace, CacheTraceBatch } from './cache-trace.js'

/** One model/domain of expert-counts.json. */
export interface RecordedRouting {
  readonly experts: number
  readonly topK: number
  /** Recorded layer ids, e.g. [0, 7, 15]. */
  readonly layers: readonly number[]
  /** `[layer index][expert]` top-k pair counts. */
  readonly topk: readonly (readonly number[])[]
  /** Transitions between consecutive recorded layers (`crossLayer.matrices`), optional. */
  readonly crossLayer?: readonly (readonly (readonly number[])[])[]
}

/** Options of {@link sampleRecordedTrace}. */
export interface SampleTraceOptions {
  /** Batches per layer. */
  readonly batches: number
  /** Tokens per batch (decode: the number of sequences). */
  readonly tokens: number
  readonly seed?: number
  /** Use cross-layer transitions for the later layers (default true when recorded). */
  readonly crossLayer?: boolean
  readonly name?: string
}

/**
 * Draws a trace of `batches` forward passes of `tokens` tokens over every recorded layer.
 * @example
 * const c4 = JSON.parse(readFileSync('expert-counts.json', 'utf8')).models.olmoe
 * const trace = sampleRecordedTrace({ experts: c4.experts, topK: c4.topK, layers: c4.layers,
 *   topk: c4.domains.c4.topk, crossLayer: c4.domains.c4.crossLayer.matrices }, { batches: 200, tokens: 8 })
 */
export function sampleRecordedTrace(data: RecordedRouting, options: SampleTraceOptions): CacheTrace {
  const { experts: E, topK: k, layers } = data
  if (!Number.isInteger(options.batches) || options.batches < 1 || !Number.isInteger(options.tokens) || options.tokens < 1) {
    throw storeError(StoreErrorCodes.STORE_TRACE_INVALID, 'batches and tokens must be positive integers', { path: 'batches' })
  }
  if (data.topk.length !== layers.length || data.topk.some((c) => c.length !== E)) {
    throw storeError(StoreErrorCodes.STORE_TRACE_INVALID, `topk must hold ${layers.length} rows of ${E} counts`, { path: 'topk' })
  }
  const rand = mulberry32(options.seed ?? 1)
  const useCross = (options.crossLayer ?? true) && data.crossLayer !== undefined && data.crossLayer.length >= layers.length - 1
  const batches: CacheTraceBatch[] = []
  for (let b = 0; b < options.batches; b++) {
    const sets = layers.map(() => new Set<number>())
    for (let t = 0; t < options.tokens; t++) {
      let prev: number[] = []
      layers.forEach((_, li) => {
        const chosen: number[] = []
        for (let r = 0; r < k; r++) {
          const weights = useCross && li > 0 ? data.crossLayer![li - 1]![prev[r]!]! : data.topk[li]!
          chosen.push(drawExcluding(weights, chosen, rand) ?? drawExcluding(data.topk[li]!, chosen, rand)!)
        }
        for (const e of chosen) sets[li]!.add(e)
        prev = chosen
      })
    }
    layers.forEach((layer, li) => batches.push({ layer, tokens: options.tokens, active: [...sets[li]!].sort((x, y) => x - y) }))
  }
  return { experts: E, batches, ...(options.name ? { name: options.name } : {}) }
}

/** One index drawn ∝ weights, skipping `exclude`; null if nothing is left with weight > 0. */
function drawExcluding(weights: readonly number[], exclude: readonly number[], rand: () => number): number | null {
  let total = 0
  for (let i = 0; i < weights.length; i++) if (!exclude.includes(i)) total += weights[i]!
  if (total <= 0) return null
  let u = rand() * total
  for (let i = 0; i < weights.length; i++) {
    if (exclude.includes(i)) continue
    u -= weights[i]!
    if (u < 0) return i
  }
  for (let i = weights.length - 1; i >= 0; i--) if (!exclude.includes(i) && weights[i]! > 0) return i
  return null
}
