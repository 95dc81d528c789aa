/**
 * Bounded label cardinality. Label values come from plugin names and drop reasons, which
 * third-party plugins choose: each label key keeps at most `maxValues` distinct values for the
 * lifetime of the instance; later new values are reported as `other`, so a plugin that puts a
 * token id or an error message into a reason cannot grow the series count without bound.
 */

/** The value reported for label values past the limit. */
export const OTHER_LABEL_VALUE = 'other'
/** Longest label value kept; longer ones are cut (and count as their cut form). */
export const MAX_LABEL_VALUE_LENGTH = 100

/** Maps raw label values to bounded ones, per label key. */
export class LabelLimiter {
  readonly #maxValues: number
  readonly #seen = new Map<string, Set<string>>()

  constructor(maxValues: number) {
    this.#maxValues = maxValues
  }

  /** The value to report for `raw` under label `key`. */
  value(key: string, raw: unknown): string {
    let v = typeof raw === 'string' ? raw : raw === undefined || raw === null ? 'unknown' : String(raw)
    if (v.length > MAX_LABEL_VALUE_LENGTH) v = v.slice(0, MAX_LABEL_VALUE_LENGTH)
    let seen = this.#seen.get(key)
    if (!seen) this.#seen.set(key, (seen = new Set()))
    if (seen.has(v)) return v
    if (seen.size >= this.#maxValues) return OTHER_LABEL_VALUE
    seen.add(v)
    return v
  }
}
