/**
 * The cache simulator: replays a trace of per-batch active sets through one cache per
 * (layer, device) for every (policy, slots) pair and reports miss rates, with Belady's MIN as
 * the lower bound and the static memory saved against keeping every expert resident.
 */
import { maxOf } from '@moe-route/core'
import { checkSlots } from '../errors.js'
import { ExpertCache, type AccessOptions } from '../cache/expert-cache.js'
import { activeByDevice, splitExperts } from '../cache/placement.js'
import type { EvictionPolicy } from '../eviction/eviction-policy.js'
import { resolveEvictionPolicy } from '../eviction/policies.js'
import { normalizeTrace, type CacheTrace } from './cache-trace.js'

/** A prediction of the experts a later layer will need, for prefetching. */
export interface PrefetchPrediction {
  /** The layer whose cache receives the prefetch. */
  readonly layer: number
  /** Experts to load, most likely first. */
  readonly experts: readonly number[]
}

/**
 * Predicts, after a layer's batch, what another layer's batch will need (e.g. from cross-layer
 * statistics, see {@link crossLayerPredictor}); null to prefetch nothing.
 */
export type PrefetchPredictor = (layer: number, active: readonly number[]) => PrefetchPrediction | null

/** Options of {@link simulateCache}. */
export interface SimulateCacheOptions {
  /** Slots per device to simulate, each in 1 … (experts on the most loaded device). */
  readonly slots: readonly number[]
  /** Policy names (`lifo`, `fifo`, `lru`, `lfu`, `belady`, `lifo-lfu`, ...) or policy objects. */
  readonly policies: readonly (string | EvictionPolicy)[]
  /** Devices under expert parallelism (default 1). Each has its own slots per layer. */
  readonly devices?: number
  /** Expert→device map (length E); default contiguous blocks. */
  readonly placement?: ArrayLike<number>
  /** A batch needing more experts than slots goes past the cache (default false, as in the paper). */
  readonly bypassLargeBatches?: boolean
  /** Keep the current batch's experts over inactive ones whatever the policy (store semantics; default false). */
  readonly protectActive?: boolean
  /** Bytes of one expert's weights, to report bytes uploaded and saved. */
  readonly expertBytes?: number
  /** Batches at the start whose accesses are not counted (the cache still fills). Default 0. */
  readonly warmupBatches?: number
  /** Prefetch after each batch into the predicted layer's caches. */
  readonly prefetch?: PrefetchPredictor
  /** Called after each (policy, slots) row with rows done and rows in all (for a progress bar). */
  readonly onProgress?: (done: number, total: number) => void
}

/** One (policy, slots) result. */
export interface CacheSimRow {
  readonly policy: string
  /** Slots per device. */
  readonly slots: number
  readonly accesses: number
  readonly hits: number
  readonly misses: number
  /** misses ÷ accesses over every device and layer. */
  readonly missRate: number
  /** Highest miss rate of any one (layer, device) cache: the paper's "worst-case miss rate". */
  readonly worstMissRate: number
  readonly evictions: number
  /** Batches (per layer and device) that went past the cache. */
  readonly bypassedBatches: number
  /** Hits on experts that prefetch loaded. */
  readonly prefetchHits: number
  /** Experts prefetch loaded that were evicted (or left) unused. */
  readonly prefetchWasted: number
  /** Expert loads, demand and prefetch (× expertBytes = bytes uploaded). */
  readonly loads: number
  /** `loads × expertBytes` when expertBytes was given. */
  readonly bytesUploaded?: number
  /** Fraction of expert weight memory not kept on the devices: 1 − Σ_d min(slots, local_d) ÷ E. */
  readonly staticMemorySaved: number
  /** Expert bytes not resident per layer when expertBytes was given. */
  readonly staticBytesSaved?: number
}

/** The simulator's output. */
export interface CacheSimTable {
  readonly trace?: string
  readonly experts: number
  readonly devices: number
  /** Experts hosted per device. */
  readonly localExperts: readonly number[]
  readonly layers: readonly number[]
  readonly batches: number
  readonly rows: readonly CacheSimRow[]
}

/**
 * Replays `trace` for every policy and slot count. Batches execute in increasing expert id on
 * each device; every (layer, device) has its own cache of `slots` experts (capped at the
 * device's expert count), cold at the start.
 * @example
 * const table = simulateCache({ experts: 4, batches: [{ active: [1, 2, 3] }, { active: [1, 2, 3] }] },
 *   { slots: [1, 2, 3, 4], policies: ['lifo', 'fifo', 'belady'] })
 * console.table(table.rows)
 */
export function simulateCache(trace: CacheTrace, options: SimulateCacheOptions): CacheSimTable {
  const t = normalizeTrace(trace)
  const split = splitExperts(t.experts, options.devices ?? 1, options.placement)
  const maxLocal = maxOf(split.local.map((l) => l.length))
  for (const [i, s] of options.slots.entries()) checkSlots(s, maxLocal, `slots[${i}]`)
  const policies = options.policies.map(resolveEvictionPolicy)
  const warmup = options.warmupBatches ?? 0

  // Per batch, the active experts of each device; per (layer, device), the access stream (Belady's future).
  const perDevice = t.batches.map((b, i) => activeByDevice(b.active, split, `batch ${i}`))
  const streams = new Map<string, number[][]>()
  t.batches.forEach((b, i) => {
    perDevice[i]!.forEach((act, d) => {
      if (act.length === 0) return
      const key = `${b.layer}:${d}`
      let s = streams.get(key)
      if (!s) streams.set(key, (s = []))
      s.push(act)
    })
  })

  const access: AccessOptions = { bypass: options.bypassLargeBatches === true, protectActive: options.protectActive === true }
  const rows: CacheSimRow[] = []
  for (const policy of policies) {
    for (const slots of options.slots) {
      const caches = new Map<string, ExpertCache>()
      const cacheFor = (layer: number, d: number): ExpertCache => {
        const key = `${layer}:${d}`
        let c = caches.get(key)
        if (!c) caches.set(key, (c = new ExpertCache(Math.min(slots, split.local[d]!.length), t.experts, policy, policy.needsFuture ? (streams.get(key) ?? []) : undefined)))
        return c
      }
      const perCache = new Map<string, { accesses: number; misses: number }>()
      let hits = 0
      let misses = 0
      let evictions = 0
      let bypassed = 0
      let prefetchHits = 0
      let prefetchWasted = 0
      let loads = 0
      t.batches.forEach((b, i) => {
        const counted = i >= warmup
        perDevice[i]!.forEach((act, d) => {
          if (act.length === 0) return
          const r = cacheFor(b.layer, d).access(act, access)
          loads += r.steps.filter((s) => s.kind !== 'hit').length
          prefetchWasted += r.prefetchWasted
          if (!counted) return
          hits += r.hits
          misses += r.misses
          evictions += r.evictions
          prefetchHits += r.prefetchHits
          if (r.bypassed) bypassed++
          const key = `${b.layer}:${d}`
          const pc = perCache.get(key) ?? { accesses: 0, misses: 0 }
          pc.accesses += act.length
          pc.misses += r.misses
          perCache.set(key, pc)
        })
        const prediction = options.prefetch?.(b.layer, b.active)
        if (prediction) {
          const byDev = activeByDevice(prediction.experts, split, 'prefetch prediction')
          byDev.forEach((experts, d) => {
            if (experts.length === 0) return
            // Keep the predicted order (most likely first) within the device.
            const ordered = prediction.experts.filter((e) => split.deviceOf[e] === d)
            const p = cacheFor(prediction.layer, d).prefetch(ordered)
            loads += p.steps.length
            prefetchWasted += p.wasted
          })
        }
      })
      for (const c of caches.values()) prefetchWasted += c.unusedPrefetched()
      const accesses = hits + misses
      let worst = 0
      for (const pc of perCache.values()) if (pc.accesses > 0) worst = Math.max(worst, pc.misses / pc.accesses)
      const resident = split.local.reduce((a, l) => a + Math.min(slots, l.length), 0)
      const eb = options.expertBytes
      rows.push({
        policy: policy.name,
        slots,
        accesses,
        hits,
        misses,
        missRate: accesses > 0 ? misses / accesses : 0,
        worstMissRate: worst,
        evictions,
        bypassedBatches: bypassed,
        prefetchHits,
        prefetchWasted,
        loads,
        ...(eb !== undefined ? { bytesUploaded: loads * eb, staticBytesSaved: (t.experts - resident) * eb } : {}),
        staticMemorySaved: 1 - resident / t.experts,
      })
      options.onProgress?.(rows.length, policies.length * options.slots.length)
    }
  }
  return {
    ...(t.name ? { trace: t.name } : {}),
    experts: t.experts,
    devices: split.devices,
    localExperts: split.local.map((l) => l.length),
    layers: t.layers,
    batches: t.batches.length,
    rows,
  }
}
