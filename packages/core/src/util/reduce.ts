/**
 * Streaming reductions. `Math.max(...values)` and `array.push(...values)` pass every element
 * as a call argument and throw `RangeError: Maximum call stack size exceeded` past roughly
 * 10^5 elements; these loop instead, so data-sized arrays are safe.
 */

/** The largest value (`empty` when there is none, default -Infinity). NaN entries are skipped. */
export function maxOf(values: Iterable<number> | ArrayLike<number>, empty = -Infinity): number {
  let m = -Infinity
  let any = false
  const visit = (v: number) => {
    if (v > m) m = v
    if (v === v) any = true
  }
  if (isArrayLike(values)) for (let i = 0; i < values.length; i++) visit(values[i])
  else for (const v of values) visit(v)
  return any ? m : empty
}

/** The smallest value (`empty` when there is none, default Infinity). NaN entries are skipped. */
export function minOf(values: Iterable<number> | ArrayLike<number>, empty = Infinity): number {
  let m = Infinity
  let any = false
  const visit = (v: number) => {
    if (v < m) m = v
    if (v === v) any = true
  }
  if (isArrayLike(values)) for (let i = 0; i < values.length; i++) visit(values[i])
  else for (const v of values) visit(v)
  return any ? m : empty
}

/** Appends every item to `target` (like `target.push(...items)` without the argument limit). Returns `target`. */
export function pushAll<T>(target: T[], items: Iterable<T> | ArrayLike<T>): T[] {
  if (isArrayLike(items)) for (let i = 0; i < items.length; i++) target.push(items[i])
  else for (const x of items) target.push(x)
  return target
}

function isArrayLike<T>(v: Iterable<T> | ArrayLike<T>): v is ArrayLike<T> {
  return typeof (v as ArrayLike<T>).length === 'number'
}

/**
 * L2 norm of a vector, float64 accumulation: the output norm of a batch (`outputNorm`) and of a
 * whole run (the norm of the batch norms: √Σ‖yᵢ‖² = ‖y‖).
 */
export function l2Norm(v: ArrayLike<number>): number {
  let s = 0
  for (let i = 0; i < v.length; i++) s += v[i] * v[i]
  return Math.sqrt(s)
}
