/**
 * Prefetch predictors from cross-layer routing statistics. A transition matrix
 * `M[a][b]` counts tokens that went to expert a at one layer and to expert b at a later one
 * (expert-counts.json's `crossLayer`); given a batch's active experts at the earlier layer,
 * the predicted experts of the later layer are those with the highest
 * `score(b) = Σ_{a active} M[a][b] / Σ_c M[a][c]`.
 */
import { StoreErrorCodes, storeError } from '../errors.js'
import type { PrefetchPredictor } from './simulate-cache.js'

/** One cross-layer transition: counts from `from`'s experts (rows) to `to`'s (columns). */
export interface LayerTransition {
  readonly from: number
  readonly to: number
  /** E×E counts, rows = experts at `from`. */
  readonly matrix: readonly (readonly number[])[]
}

/** Options of {@link crossLayerPredictor}. */
export interface CrossLayerPredictorOptions {
  readonly transitions: readonly LayerTransition[]
  /** Experts to prefetch per batch (the top of the score). */
  readonly count: number
  /** Experts with a score below this fraction of the top score are not prefetched (default 0). */
  readonly minShare?: number
}

/** Ranks the later layer's experts by their conditional mass given the earlier layer's active set. */
export function rankNextExperts(matrix: readonly (readonly number[])[], active: readonly number[]): number[] {
  const E = matrix.length
  const score = new Float64Array(E)
  for (const a of active) {
    const row = matrix[a]
    if (!row) continue
    let sum = 0
    for (const v of row) sum += v
    if (sum === 0) continue
    for (let b = 0; b < E; b++) score[b]! += row[b]! / sum
  }
  return [...score.keys()].sort((x, y) => score[y]! - score[x]! || x - y).filter((b) => score[b]! > 0)
}

/**
 * A {@link PrefetchPredictor} for the simulator (and the store's `prefetch`) from cross-layer
 * transition counts.
 * @example
 * const stats = JSON.parse(readFileSync('expert-counts.json', 'utf8')).models.olmoe.domains.c4
 * const predict = crossLayerPredictor({ count: 16, transitions: [
 *   { from: 0, to: 7, matrix: stats.crossLayer.matrices[0] }, { from: 7, to: 15, matrix: stats.crossLayer.matrices[1] }] })
 */
export function crossLayerPredictor(options: CrossLayerPredictorOptions): PrefetchPredictor {
  if (!Number.isInteger(options.count) || options.count < 1) {
    throw storeError(StoreErrorCodes.STORE_SLOTS_INVALID, `prefetch count must be a positive integer, got ${String(options.count)}`, { path: 'prefetch/count' })
  }
  const byFrom = new Map<number, LayerTransition>()
  for (const t of options.transitions) {
    if (!Array.isArray(t.matrix) || t.matrix.some((r) => !Array.isArray(r) || r.length !== t.matrix.length)) {
      throw storeError(StoreErrorCodes.STORE_TRACE_INVALID, `transition ${t.from}->${t.to}: matrix must be square (E×E)`, { path: 'transitions' })
    }
    byFrom.set(t.from, t)
  }
  const minShare = options.minShare ?? 0
  return (layer, active) => {
    const t = byFrom.get(layer)
    if (!t) return null
    const ranked = rankNextExperts(t.matrix, active)
    if (ranked.length === 0) return null
    const top = rankScore(t.matrix, active, ranked[0]!)
    const experts = ranked.slice(0, options.count).filter((b) => rankScore(t.matrix, active, b) >= minShare * top)
    return { layer: t.to, experts }
  }
}

function rankScore(matrix: readonly (readonly number[])[], active: readonly number[], b: number): number {
  let s = 0
  for (const a of active) {
    const row = matrix[a]
    if (!row) continue
    const sum = row.reduce((x, y) => x + y, 0)
    if (sum > 0) s += row[b]! / sum
  }
  return s
}
