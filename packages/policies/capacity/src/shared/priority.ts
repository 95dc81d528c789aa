/** Which pairs an over-capacity expert keeps, and the per-expert selection itself. */
import { ErrorCodes, MoeError, type Routing } from '@moe-route/core'

/**
 * Which pairs win at an over-capacity expert:
 * - `score`: highest gate score (the paper's Score; batch-order invariant),
 * - `first`: earliest tokens in batch order (the paper's "Order", official code strategy `last`),
 * - `last`: latest tokens (the paper's "Reverse Order", official code strategy `first`),
 * - `random`: seeded uniform keys from the policy context.
 */
export type Priority = 'score' | 'first' | 'last' | 'random'

/** A (token, expert) pair with a priority key: higher keys are kept first. */
export interface KeyedPair {
  readonly token: number
  readonly expert: number
  /** Weight the pair carries in the input routing. */
  readonly weight: number
  /** Priority key (score, ±token or a random draw). */
  readonly key: number
}

/**
 * Keys the routing's pairs for a priority. Pairs are listed in token order, then slot order;
 * `random` draws one number per pair in that order, so a seeded generator gives the same keys.
 */
export function keyedPairs(routing: Routing, priority: Priority, random?: () => number): KeyedPair[] {
  const { tokens, slots, expertIds, weights, scores, experts } = routing
  if (priority === 'random' && !random) {
    throw new MoeError(ErrorCodes.INPUT_INVALID, "priority 'random' needs a seeded random generator (PolicyContext.random)")
  }
  const out: KeyedPair[] = []
  for (let t = 0; t < tokens; t++) {
    for (let j = 0; j < slots; j++) {
      const e = expertIds[t * slots + j]
      if (e < 0) continue
      const key =
        priority === 'score'
          ? scores[t * experts + e]
          : priority === 'first'
            ? -t
            : priority === 'last'
              ? t
              : random!()
      out.push({ token: t, expert: e, weight: weights[t * slots + j], key })
    }
  }
  return out
}

/** Keep-first order: key descending, then token ascending, then expert ascending. */
export function compareKeyed(a: KeyedPair, b: KeyedPair): number {
  return b.key - a.key || a.token - b.token || a.expert - b.expert
}

/** The result of a per-expert (or per-device) capacity cut. */
export interface CapacityCut<P> {
  /** Pairs within capacity. */
  readonly kept: P[]
  /** Pairs over capacity, in the order they lost (best loser first). */
  readonly over: P[]
}

/**
 * Keeps at most `capacity` pairs in each bucket (`bucketOf` maps a pair to its expert or
 * device), choosing by `compare` (keep-first order). Buckets within capacity are untouched.
 * O(P log P) in the worst case.
 */
export function keepWithinCapacity<P>(
  pairs: readonly P[],
  buckets: number,
  bucketOf: (p: P) => number,
  capacity: (bucket: number) => number,
  compare: (a: P, b: P) => number,
): CapacityCut<P> {
  const lists: P[][] = Array.from({ length: buckets }, () => [])
  for (const p of pairs) lists[bucketOf(p)].push(p)
  const kept: P[] = []
  const over: P[] = []
  for (let b = 0; b < buckets; b++) {
    const list = lists[b]
    const cap = Math.max(0, capacity(b))
    if (list.length <= cap) {
      for (const p of list) kept.push(p)
      continue
    }
    list.sort(compare)
    for (let i = 0; i < list.length; i++) (i < cap ? kept : over).push(list[i])
  }
  return { kept, over }
}
