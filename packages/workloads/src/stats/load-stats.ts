/**
 * Load statistics of a routing stream: per-expert load over the whole stream and max/mean
 * expert load per batch for several batch sizes (the straggler factor of a batch).
 */
import { quantileSorted } from '@moe-route/core'

/** Per-batch max/mean for one batch size. Only full batches count. */
export interface BatchLoadStats {
  readonly batchSize: number
  readonly batches: number
  /** Mean over batches of max_e load / mean_e load. */
  readonly meanMaxMean: number
  /** 95th percentile over batches (core's `quantile`: linear interpolation, NumPy's default). */
  readonly p95MaxMean: number
  /** Largest over batches. */
  readonly maxMaxMean: number
}

/** Statistics of a routing stream. */
export interface LoadStats {
  readonly tokens: number
  readonly pairs: number
  readonly experts: number
  /** Pairs per expert over the whole stream. */
  readonly load: readonly number[]
  /** Stream-wide max/mean and min/mean of per-expert load. */
  readonly maxMean: number
  readonly minMean: number
  readonly perBatch: readonly BatchLoadStats[]
}

/** Default batch sizes of load statistics. */
export const DEFAULT_STAT_BATCH_SIZES: readonly number[] = [512, 2048, 8192]

/**
 * Accumulates {@link LoadStats} token by token in O(E · batch sizes) memory. Batch windows are
 * aligned at token 0 of the stream; a trailing partial window is not counted.
 *
 * @example
 * const acc = new LoadAccumulator(8)
 * for (const c of workload.choices({ tokensPerBatch: 4096, tokens: 1e6 })) acc.addTokens(c.expertIds, 2)
 * acc.result().perBatch
 */
export class LoadAccumulator {
  readonly experts: number
  readonly batchSizes: readonly number[]
  private readonly load: Float64Array
  private readonly windows: { size: number; fill: number; load: Float64Array; ratios: number[] }[]
  private tokens = 0
  private pairs = 0

  constructor(experts: number, batchSizes: readonly number[] = DEFAULT_STAT_BATCH_SIZES) {
    this.experts = experts
    this.batchSizes = batchSizes
    this.load = new Float64Array(experts)
    this.windows = batchSizes.map((size) => ({ size, fill: 0, load: new Float64Array(experts), ratios: [] }))
  }

  /** Adds one token routed to `experts[offset .. offset+count)` (entries < 0 are empty slots). */
  addToken(experts: ArrayLike<number>, offset = 0, count = experts.length): void {
    for (let j = 0; j < count; j++) {
      const e = experts[offset + j]
      if (e < 0) continue
      this.load[e]++
      this.pairs++
      for (const w of this.windows) w.load[e]++
    }
    this.tokens++
    for (const w of this.windows) {
      if (++w.fill === w.size) {
        w.ratios.push(maxMean(w.load))
        w.load.fill(0)
        w.fill = 0
      }
    }
  }

  /** Adds `expertIds.length / k` tokens of k slots each. */
  addTokens(expertIds: ArrayLike<number>, k: number): void {
    for (let o = 0; o + k <= expertIds.length; o += k) this.addToken(expertIds, o, k)
  }

  /** The statistics so far. */
  result(): LoadStats {
    let sum = 0
    let min = Infinity
    for (const l of this.load) {
      sum += l
      min = Math.min(min, l)
    }
    const mean = sum / this.experts
    return {
      tokens: this.tokens,
      pairs: this.pairs,
      experts: this.experts,
      load: Array.from(this.load),
      maxMean: maxMean(this.load),
      minMean: mean > 0 ? min / mean : 0,
      perBatch: this.windows.map((w) => {
        const sorted = Float64Array.from(w.ratios).sort()
        const n = sorted.length
        return {
          batchSize: w.size,
          batches: n,
          meanMaxMean: n ? sorted.reduce((a, b) => a + b, 0) / n : 0,
          p95MaxMean: n ? quantileSorted(sorted, 0.95) : 0,
          maxMaxMean: n ? sorted[n - 1] : 0,
        }
      }),
    }
  }
}

/** max/mean of a load vector (mean over all entries); 0 when empty. */
export function maxMean(load: ArrayLike<number>): number {
  let sum = 0
  let max = 0
  for (let i = 0; i < load.length; i++) {
    sum += load[i]
    if (load[i] > max) max = load[i]
  }
  return sum === 0 ? 0 : max / (sum / load.length)
}

/** Total variation distance ½Σ|p−q| between two load vectors after normalising each to sum 1. */
export function loadDistance(a: readonly number[], b: readonly number[]): number {
  const sa = a.reduce((x, y) => x + y, 0)
  const sb = b.reduce((x, y) => x + y, 0)
  let d = 0
  for (let i = 0; i < a.length; i++) d += Math.abs(a[i] / sa - b[i] / sb)
  return d / 2
}
