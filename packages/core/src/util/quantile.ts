/**
 * Percentiles: the one definition the monorepo reports (simulator latencies, workloads' load
 * statistics, placement's engine metrics, the CLI).
 *
 * The q-quantile of n sorted values is the linear interpolation between the two closest ranks:
 * position h = q·(n − 1), result s[⌊h⌋] + (h − ⌊h⌋)·(s[⌈h⌉] − s[⌊h⌋]). This is Hyndman and
 * Fan's type 7, the default of NumPy (`np.quantile`, method 'linear'), PyTorch
 * (`torch.quantile`) and R, so numbers match what vLLM and SGLang compute for the same metric.
 * q = 0 is the minimum, q = 1 the maximum, and one value is its own every quantile.
 */

/**
 * The q-quantile (q in [0, 1]) of values already sorted ascending; NaN when there are none.
 * Use it to read several quantiles of one sorted array without sorting again.
 */
export function quantileSorted(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length
  if (n === 0) return Number.NaN
  const h = Math.min(1, Math.max(0, q)) * (n - 1)
  const lo = Math.floor(h)
  const hi = Math.ceil(h)
  return sorted[lo] + (h - lo) * (sorted[hi] - sorted[lo])
}

/**
 * The q-quantile (q in [0, 1]) of values in any order (linear interpolation, NumPy's default);
 * NaN when there are none. The input is not modified.
 *
 * @example
 * quantile([1, 2, 3, 4], 0.5) // 2.5
 * quantile([1, 4], 0.95)      // 3.85
 */
export function quantile(values: ArrayLike<number>, q: number): number {
  return quantileSorted(Float64Array.from(values).sort(), q)
}
