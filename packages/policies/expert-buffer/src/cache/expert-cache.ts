/**
 * The residency bookkeeping of one device's expert slots: which expert sits in which slot,
 * insertion order, recency, frequency and (for Belady) the future. It moves no bytes: the
 * store replays its steps on a residency target, the simulator only counts them. Lifetime:
 * one ExpertCache per (layer, device); `clone()` gives an independent copy, which is how the
 * store plans a batch without touching the live state until every load has succeeded.
 */
import { ErrorCodes, MoeError } from '@moe-route/core'
import type { EvictionContext, EvictionPolicy, ResidentExpert } from '../eviction/eviction-policy.js'

/** What happened to one expert of a batch. */
export interface CacheStep {
  readonly expert: number
  /** `hit`: resident; `load`: uploaded into `slot`; `stream`: uploaded past the cache (bypass). */
  readonly kind: 'hit' | 'load' | 'stream'
  /** Slot that holds it, -1 for `stream`. */
  readonly slot: number
  /** Expert evicted to make room, -1 if the slot was free. */
  readonly evicted: number
  /** A hit on an expert that prefetch brought in and nothing used before. */
  readonly prefetchHit: boolean
}

/** Counters of one batch on one cache. */
export interface CacheBatchResult {
  readonly hits: number
  readonly misses: number
  readonly evictions: number
  /** True if the batch needed more experts than slots and went past the cache. */
  readonly bypassed: boolean
  readonly prefetchHits: number
  /** Prefetched experts evicted before any use during this batch. */
  readonly prefetchWasted: number
  /** One step per active expert, in execution (increasing id) order. */
  readonly steps: readonly CacheStep[]
}

/** Options of {@link ExpertCache.access}. */
export interface AccessOptions {
  /**
   * Never evict an expert of the current batch while an inactive one is resident, whatever the
   * policy (what a store needs to keep every active expert resident at once). Default false:
   * the policy alone decides, as in the paper's simulation.
   */
  readonly protectActive?: boolean
  /** A batch with more active experts than slots goes past the cache (no insert, no evict). */
  readonly bypass?: boolean
}

interface Entry {
  expert: number
  slot: number
  insertedAt: number
  lastUsedAt: number
  hits: number
  prefetched: boolean
}

/** Residency state of one device's slots under one eviction policy. */
export class ExpertCache {
  readonly slots: number
  readonly policy: EvictionPolicy
  #bySlot: (Entry | null)[]
  #byExpert = new Map<number, Entry>()
  #freq: Float64Array
  #time = 0
  #batch = 0
  #future: Map<number, Int32Array> | null

  /**
   * @param slots  GPU slots of the device (≥ 1).
   * @param experts  E: expert ids are 0 … E-1.
   * @param policy  eviction policy.
   * @param future  the accesses to come, as batches of ascending expert ids (Belady).
   */
  constructor(slots: number, experts: number, policy: EvictionPolicy, future?: readonly (readonly number[])[]) {
    this.slots = slots
    this.policy = policy
    this.#bySlot = new Array<Entry | null>(slots).fill(null)
    this.#freq = new Float64Array(experts)
    this.#future = future ? indexFuture(future) : null
  }

  /** An independent copy (state and future shared read-only). */
  clone(): ExpertCache {
    const c = new ExpertCache(this.slots, this.#freq.length, this.policy)
    c.#future = this.#future
    c.#freq = this.#freq.slice()
    c.#time = this.#time
    c.#batch = this.#batch
    for (const e of this.#byExpert.values()) {
      const copy = { ...e }
      c.#bySlot[e.slot] = copy
      c.#byExpert.set(e.expert, copy)
    }
    return c
  }

  /** Resident experts, ascending. */
  resident(): number[] {
    return [...this.#byExpert.keys()].sort((a, b) => a - b)
  }

  /** Slot holding `expert`, or -1. */
  slotOf(expert: number): number {
    return this.#byExpert.get(expert)?.slot ?? -1
  }

  /** Expert in `slot`, or -1 if the slot is empty. */
  expertIn(slot: number): number {
    return this.#bySlot[slot]?.expert ?? -1
  }

  /** Resident experts with their bookkeeping. */
  entries(): readonly ResidentExpert[] {
    return [...this.#byExpert.values()]
  }

  /** Forgets whatever `slot` holds (the slot becomes free). */
  dropSlot(slot: number): void {
    const e = this.#bySlot[slot]
    if (!e) return
    this.#bySlot[slot] = null
    this.#byExpert.delete(e.expert)
  }

  /** Prefetched experts still unused. */
  unusedPrefetched(): number {
    let n = 0
    for (const e of this.#byExpert.values()) if (e.prefetched) n++
    return n
  }

  /** Accesses so far. */
  get time(): number {
    return this.#time
  }

  /**
   * Runs one batch: `active` (ascending, unique) are executed in order; a missing expert is
   * loaded into a free slot or the policy's victim's slot.
   */
  access(active: readonly number[], options: AccessOptions = {}): CacheBatchResult {
    const activeSet = new Set(active)
    const bypass = options.bypass === true && active.length > this.slots
    const steps: CacheStep[] = []
    let hits = 0
    let misses = 0
    let evictions = 0
    let prefetchHits = 0
    let prefetchWasted = 0
    for (const expert of active) {
      this.#freq[expert]! += 1
      const entry = this.#byExpert.get(expert)
      if (entry) {
        hits++
        const prefetchHit = entry.prefetched
        if (prefetchHit) prefetchHits++
        entry.prefetched = false
        entry.hits++
        entry.lastUsedAt = this.#time
        steps.push({ expert, kind: 'hit', slot: entry.slot, evicted: -1, prefetchHit })
      } else if (bypass) {
        misses++
        steps.push({ expert, kind: 'stream', slot: -1, evicted: -1, prefetchHit: false })
      } else {
        misses++
        let slot = this.#bySlot.indexOf(null)
        let evicted = -1
        if (slot < 0) {
          let candidates = [...this.#byExpert.values()]
          if (options.protectActive) {
            const inactive = candidates.filter((r) => !activeSet.has(r.expert))
            if (inactive.length > 0) candidates = inactive
          }
          const victim = this.#victim(candidates, expert, activeSet)
          evictions++
          if (victim.prefetched) prefetchWasted++
          evicted = victim.expert
          slot = victim.slot
          this.#byExpert.delete(victim.expert)
        }
        const fresh: Entry = { expert, slot, insertedAt: this.#time, lastUsedAt: this.#time, hits: 0, prefetched: false }
        this.#bySlot[slot] = fresh
        this.#byExpert.set(expert, fresh)
        steps.push({ expert, kind: 'load', slot, evicted, prefetchHit: false })
      }
      this.#time++
    }
    this.#batch++
    return { hits, misses, evictions, bypassed: bypass, prefetchHits, prefetchWasted, steps }
  }

  /**
   * Loads `experts` ahead of need (in the order given). A full cache evicts the policy's victim
   * among experts outside `experts ∪ protect`; when there is none, prefetching stops.
   * Returns the load steps and how many unused prefetched experts were displaced.
   */
  prefetch(experts: readonly number[], protect: ReadonlySet<number> = new Set()): { steps: CacheStep[]; wasted: number } {
    const keep = new Set([...experts, ...protect])
    const steps: CacheStep[] = []
    let wasted = 0
    for (const expert of experts) {
      if (this.#byExpert.has(expert)) continue
      let slot = this.#bySlot.indexOf(null)
      let evicted = -1
      if (slot < 0) {
        const candidates = [...this.#byExpert.values()].filter((r) => !keep.has(r.expert))
        if (candidates.length === 0) break
        const victim = this.#victim(candidates, expert, keep)
        if (victim.prefetched) wasted++
        evicted = victim.expert
        slot = victim.slot
        this.#byExpert.delete(victim.expert)
      }
      const fresh: Entry = { expert, slot, insertedAt: this.#time, lastUsedAt: this.#time, hits: 0, prefetched: true }
      this.#bySlot[slot] = fresh
      this.#byExpert.set(expert, fresh)
      steps.push({ expert, kind: 'load', slot, evicted, prefetchHit: false })
    }
    return { steps, wasted }
  }

  #victim(candidates: Entry[], incoming: number, active: ReadonlySet<number>): Entry {
    const future = this.#future
    const time = this.#time
    const freq = this.#freq
    const context: EvictionContext = {
      candidates,
      incoming,
      active,
      batch: this.#batch,
      time,
      frequency: (e) => freq[e] ?? 0,
      hasFuture: future !== null,
      nextUse: (e) => nextAfter(future?.get(e), time),
    }
    const victim = this.policy.victim(context) as Entry
    if (!candidates.includes(victim)) {
      throw new MoeError(ErrorCodes.PLUGIN_FAILED, `eviction policy '${this.policy.name}' returned an expert that is not a candidate`, {
        plugin: this.policy.name,
        hook: 'victim',
      })
    }
    return victim
  }
}

function indexFuture(batches: readonly (readonly number[])[]): Map<number, Int32Array> {
  const lists = new Map<number, number[]>()
  let t = 0
  for (const batch of batches) {
    for (const e of batch) {
      let l = lists.get(e)
      if (!l) lists.set(e, (l = []))
      l.push(t++)
    }
  }
  const out = new Map<number, Int32Array>()
  for (const [e, l] of lists) out.set(e, Int32Array.from(l))
  return out
}

/** First position > time in a sorted list, Infinity if none. */
function nextAfter(positions: Int32Array | undefined, time: number): number {
  if (!positions) return Infinity
  let lo = 0
  let hi = positions.length
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    if (positions[mid]! <= time) lo = mid + 1
    else hi = mid
  }
  return lo < positions.length ? positions[lo]! : Infinity
}
