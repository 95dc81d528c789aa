/**
 * Built-in eviction policies: the paper's LIFO with inactive-first eviction, FIFO, LRU, LFU,
 * Belady's MIN (offline optimum) and `lifo-lfu`, our popularity-aware variant of LIFO.
 * Ties are broken by expert id (lowest first) so every policy is deterministic.
 */
import { StoreErrorCodes, storeError } from '../errors.js'
import type { EvictionContext, EvictionPolicy, ResidentExpert } from './eviction-policy.js'

type Key = (r: ResidentExpert, c: EvictionContext) => number

/** The candidate with the smallest key (ties: lowest expert id). */
function minBy(list: readonly ResidentExpert[], key: (r: ResidentExpert) => number): ResidentExpert {
  let best = list[0]!
  let bestKey = key(best)
  for (let i = 1; i < list.length; i++) {
    const r = list[i]!
    const k = key(r)
    if (k < bestKey || (k === bestKey && r.expert < best.expert)) {
      best = r
      bestKey = k
    }
  }
  return best
}

const orderKeys = {
  /** Most recently inserted first. */
  lifo: (r) => -r.insertedAt,
  /** Least recently inserted first. */
  fifo: (r) => r.insertedAt,
  /** Least recently used first. */
  lru: (r) => r.lastUsedAt,
  /** Least frequently accessed first (ties: least recently used). */
  lfu: (r, c) => c.frequency(r.expert) * 1e12 + r.lastUsedAt,
} satisfies Record<string, Key>

/** Orders usable among inactive experts in {@link lifoPolicy}. */
export type InactiveOrder = keyof typeof orderKeys

/** Options of {@link lifoPolicy}. */
export interface LifoOptions {
  /** Evict experts that the current batch does not need before any it needs (paper: true). */
  readonly inactiveFirst?: boolean
  /**
   * Which inactive expert goes first when several are (SPEC E.9 leaves it open; default `lifo`,
   * the most recently inserted, as in the paper's rule for active ones).
   */
  readonly inactiveOrder?: InactiveOrder
  /** Name in tables; defaults to `lifo`, or `lifo-<order>` for another inactive order. */
  readonly name?: string
}

/**
 * Expert Buffering's policy (Huang et al., "Towards MoE Deployment", §VI): evict an expert the
 * current batch does not need; otherwise the most recently inserted one (last in, first out).
 * "Last in" is the last *inserted* expert, not the last used (SPEC E.9).
 */
export function lifoPolicy(options: LifoOptions = {}): EvictionPolicy {
  const inactiveFirst = options.inactiveFirst ?? true
  const order = options.inactiveOrder ?? 'lifo'
  const inactiveKey = orderKeys[order]
  if (!inactiveKey) throw storeError(StoreErrorCodes.STORE_POLICY_UNKNOWN, `unknown inactiveOrder '${String(order)}'`, { path: 'inactiveOrder' })
  const name = options.name ?? (inactiveFirst ? (order === 'lifo' ? 'lifo' : `lifo-${order}`) : 'lifo-pure')
  return {
    name,
    victim(c) {
      if (inactiveFirst) {
        const inactive = c.candidates.filter((r) => !c.active.has(r.expert))
        if (inactive.length > 0) return minBy(inactive, (r) => inactiveKey(r, c))
      }
      return minBy(c.candidates, (r) => -r.insertedAt)
    },
  }
}

/** First in, first out: evicts the expert inserted longest ago. */
export function fifoPolicy(): EvictionPolicy {
  return { name: 'fifo', victim: (c) => minBy(c.candidates, (r) => r.insertedAt) }
}

/** Least recently used. */
export function lruPolicy(): EvictionPolicy {
  return { name: 'lru', victim: (c) => minBy(c.candidates, (r) => r.lastUsedAt) }
}

/** Least frequently used (accesses counted over the cache's whole history; ties: LRU). */
export function lfuPolicy(): EvictionPolicy {
  return { name: 'lfu', victim: (c) => minBy(c.candidates, (r) => orderKeys.lfu(r, c)) }
}

/**
 * Belady's MIN: evicts the expert whose next access is farthest in the future. Optimal for any
 * access stream (it is the lower bound the simulator reports); needs the future, so it runs in
 * the simulator or in a store given `future`.
 */
export function beladyPolicy(): EvictionPolicy {
  return {
    name: 'belady',
    needsFuture: true,
    victim(c) {
      if (!c.hasFuture) throw storeError(StoreErrorCodes.STORE_FUTURE_REQUIRED, "eviction policy 'belady' needs the future access stream")
      // Farthest next use first; among never-used-again experts the lowest id.
      return minBy(c.candidates, (r) => -c.nextUse(r.expert))
    },
  }
}

/** Factories of the built-in policies by name (what configs and the CLI accept). */
export const evictionPolicies: Readonly<Record<string, () => EvictionPolicy>> = {
  lifo: () => lifoPolicy(),
  'lifo-pure': () => lifoPolicy({ inactiveFirst: false }),
  'lifo-fifo': () => lifoPolicy({ inactiveOrder: 'fifo' }),
  'lifo-lru': () => lifoPolicy({ inactiveOrder: 'lru' }),
  'lifo-lfu': () => lifoPolicy({ inactiveOrder: 'lfu' }),
  fifo: fifoPolicy,
  lru: lruPolicy,
  lfu: lfuPolicy,
  belady: beladyPolicy,
}

/** Names accepted by {@link resolveEvictionPolicy}. */
export const evictionPolicyNames: readonly string[] = Object.keys(evictionPolicies)

/** A policy object, or a built-in by name; unknown names throw STORE_POLICY_UNKNOWN. */
export function resolveEvictionPolicy(policy: string | EvictionPolicy): EvictionPolicy {
  if (typeof policy !== 'string') return policy
  const make = evictionPolicies[policy]
  if (!make) {
    throw storeError(StoreErrorCodes.STORE_POLICY_UNKNOWN, `unknown eviction policy '${policy}' (known: ${evictionPolicyNames.join(', ')})`, {
      path: 'policy',
      policy,
    })
  }
  return make()
}
