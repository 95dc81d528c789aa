/**
 * The eviction-policy contract. A policy picks which resident expert leaves a full cache when
 * another one must be loaded. Policies are plain objects; the cache owns all state (insertion
 * order, recency, frequency, the known future) and hands it to the policy on every eviction,
 * so one policy object may serve many caches at once.
 */

/** One resident expert as a policy sees it. Times are positions in the cache's access stream. */
export interface ResidentExpert {
  readonly expert: number
  /** GPU slot (0 … slots-1) that holds it. */
  readonly slot: number
  /** Access time at which it was inserted (loaded or prefetched). */
  readonly insertedAt: number
  /** Access time of its last use (its insertion time if never used since). */
  readonly lastUsedAt: number
  /** Hits since insertion. */
  readonly hits: number
  /** Inserted by prefetch and not used yet. */
  readonly prefetched: boolean
}

/** What a policy is told when a victim is needed. */
export interface EvictionContext {
  /** Resident experts that may be evicted (never empty; never contains `incoming`). */
  readonly candidates: readonly ResidentExpert[]
  /** The expert about to be loaded. */
  readonly incoming: number
  /** Experts the current batch needs on this device (executed in increasing id). */
  readonly active: ReadonlySet<number>
  /** Index of the current batch on this cache (0-based). */
  readonly batch: number
  /** Position of the current access in this cache's access stream. */
  readonly time: number
  /** Accesses of `expert` on this cache so far (the current one included). */
  frequency(expert: number): number
  /** Position of the next access of `expert` after `time`, `Infinity` if none; only when `hasFuture`. */
  nextUse(expert: number): number
  /** True when the cache was given the future access stream (Belady). */
  readonly hasFuture: boolean
}

/**
 * Chooses eviction victims. Implement this to plug your own policy into the store and the
 * simulator; `victim` must return one of `context.candidates`.
 * @example
 * const mostPopularLast: EvictionPolicy = {
 *   name: 'least-popular',
 *   victim: (c) => c.candidates.reduce((a, b) => (c.frequency(b.expert) < c.frequency(a.expert) ? b : a)),
 * }
 */
export interface EvictionPolicy {
  /** Short id shown in tables and telemetry, e.g. `lifo`. */
  readonly name: string
  /** True if the policy reads `nextUse` (the cache must be given the future). */
  readonly needsFuture?: boolean
  /** Picks the expert to evict. */
  victim(context: EvictionContext): ResidentExpert
}
