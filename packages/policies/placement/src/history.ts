/**
 * Load history statistics and the B.5 evaluation metrics (SPEC B.5, E.10): per-batch
 * activation fractions A_mb, their means, Pearson correlations between experts, and the
 * per-device load shares L_nb = Σ_m P_mn·A_mb behind Max Load and Avg Max Load.
 */
import { ErrorCodes, MoeError, type PlacementMap } from '@moe-route/core'

/** A load history: batches × experts pair counts (what core's PlacementInput.history holds). */
export type LoadHistory = readonly (readonly number[])[]

/** A_mb: each batch's loads divided by the batch's total pairs (a batch with no pairs stays all 0). */
export function loadFractions(history: LoadHistory): number[][] {
  return history.map((row) => {
    let sum = 0
    for (const v of row) sum += v
    return row.map((v) => (sum > 0 ? v / sum : 0))
  })
}

/** Ã_m: mean over batches of A_mb (length E). Throws on an empty or ragged history. */
export function meanFractions(history: LoadHistory): number[] {
  const experts = checkHistory(history)
  const out = new Array<number>(experts).fill(0)
  for (const row of loadFractions(history)) for (let e = 0; e < experts; e++) out[e] += row[e] / history.length
  return out
}

/**
 * S_ab: Pearson correlation between experts a and b of the activation fractions across
 * batches (SPEC E.10: over fractions A_mb). An expert whose fraction never varies has
 * correlation 0 with every other expert; the diagonal is 1.
 */
export function pearsonMatrix(history: LoadHistory): number[][] {
  const experts = checkHistory(history)
  const a = loadFractions(history)
  const B = a.length
  const mean = new Float64Array(experts)
  for (const row of a) for (let e = 0; e < experts; e++) mean[e] += row[e] / B
  const centred = a.map((row) => row.map((v, e) => v - mean[e]))
  const norm = new Float64Array(experts)
  for (const row of centred) for (let e = 0; e < experts; e++) norm[e] += row[e] * row[e]
  const S = Array.from({ length: experts }, () => new Array<number>(experts).fill(0))
  for (let i = 0; i < experts; i++) {
    S[i][i] = 1
    for (let j = i + 1; j < experts; j++) {
      let dot = 0
      for (const row of centred) dot += row[i] * row[j]
      const den = Math.sqrt(norm[i] * norm[j])
      const r = den > 1e-300 ? dot / den : 0
      S[i][j] = r
      S[j][i] = r
    }
  }
  return S
}

/**
 * L_nb for one batch: each device's share of the batch's pairs, with a replicated expert's
 * load split evenly between its replicas. Sums to 1 (or 0 for an empty batch).
 */
export function deviceShares(loads: readonly number[], placement: PlacementMap): number[] {
  const out = new Array<number>(placement.devices).fill(0)
  let sum = 0
  for (const v of loads) sum += v
  if (sum === 0) return out
  loads.forEach((l, e) => {
    const reps = placement.replicas[e]
    for (const d of reps) out[d] += l / reps.length / sum
  })
  return out
}

/** Max Load and Avg Max Load of a placement over a load history (SPEC B.5). */
export interface LoadEvaluation {
  /** Max over batches of the largest per-device share (OOM risk). */
  readonly maxLoad: number
  /** Mean over batches of the largest per-device share (speed). */
  readonly avgMaxLoad: number
  /** The largest per-device share of each batch. */
  readonly perBatch: readonly number[]
  /** The ideal share 1/D, for reference. */
  readonly ideal: number
}

/** Evaluates a placement on a history with the B.5 metrics. */
export function evaluateLoad(placement: PlacementMap, history: LoadHistory): LoadEvaluation {
  checkHistory(history, placement.experts)
  const perBatch = history.map((row) => Math.max(...deviceShares(row, placement)))
  const maxLoad = perBatch.reduce((m, v) => Math.max(m, v), 0)
  const avgMaxLoad = perBatch.reduce((s, v) => s + v, 0) / perBatch.length
  return { maxLoad, avgMaxLoad, perBatch, ideal: 1 / placement.devices }
}

/** The paper's protocol: the first ⌊B/2⌋ batches build, the rest measure (SPEC B.5). */
export function splitHistory<T>(history: readonly T[]): { build: T[]; measure: T[] } {
  if (history.length < 2) {
    throw new MoeError(ErrorCodes.INPUT_INVALID, `the protocol needs at least 2 batches of history, got ${history.length}`, { path: '/history' })
  }
  const half = Math.floor(history.length / 2)
  return { build: history.slice(0, half), measure: history.slice(half) }
}

/** Checks a history is non-empty and rectangular; returns its expert count. */
export function checkHistory(history: LoadHistory, experts?: number): number {
  if (history.length === 0) throw new MoeError(ErrorCodes.INPUT_INVALID, 'load history is empty', { path: '/history' })
  const E = experts ?? history[0].length
  history.forEach((row, b) => {
    if (row.length !== E) {
      throw new MoeError(ErrorCodes.SHAPE_MISMATCH, `history batch ${b} has ${row.length} experts, expected ${E}`, { path: `/history/${b}` })
    }
    for (const v of row) {
      if (!Number.isFinite(v) || v < 0) {
        throw new MoeError(ErrorCodes.INPUT_INVALID, `history batch ${b} has a load ${v}; loads are finite and ≥ 0`, { path: `/history/${b}` })
      }
    }
  })
  return E
}
