import { describe, expect, it } from 'vitest'
import fc from 'fast-check'
import { ExpertCache } from './expert-cache.js'
import { beladyPolicy, fifoPolicy, lfuPolicy, lifoPolicy, lruPolicy, resolveEvictionPolicy } from '../eviction/policies.js'
import type { EvictionPolicy } from '../eviction/eviction-policy.js'

function run(policy: EvictionPolicy, slots: number, experts: number, batches: number[][], withFuture = false) {
  const cache = new ExpertCache(slots, experts, policy, withFuture ? batches : undefined)
  let misses = 0
  for (const b of batches) misses += cache.access(b).misses
  return { cache, misses }
}

describe('ExpertCache', () => {
  it("reproduces the paper's example: E=4, 2 slots, {1,2,3}: loading 3 evicts 2 (last in)", () => {
    const cache = new ExpertCache(2, 4, lifoPolicy())
    const r = cache.access([1, 2, 3])
    expect(r.steps.map((s) => [s.expert, s.kind, s.evicted])).toEqual([
      [1, 'load', -1],
      [2, 'load', -1],
      [3, 'load', 2],
    ])
    expect(cache.resident()).toEqual([1, 3])
    // Next sweep: 1 hits (shortest reuse distance), which is the point of LIFO.
    const r2 = cache.access([1, 2, 3])
    expect(r2.steps[0]).toMatchObject({ expert: 1, kind: 'hit' })
  })

  it('on a cyclic sweep larger than the cache, LIFO beats FIFO and LRU (which miss every access)', () => {
    const batches = Array.from({ length: 20 }, () => [1, 2, 3])
    const lifo = run(lifoPolicy(), 2, 4, batches).misses
    const fifo = run(fifoPolicy(), 2, 4, batches).misses
    const lru = run(lruPolicy(), 2, 4, batches).misses
    const belady = run(beladyPolicy(), 2, 4, batches, true).misses
    expect(fifo).toBe(60)
    expect(lru).toBe(60)
    expect(lifo).toBe(3 + 19 * 2)
    expect(belady).toBeLessThanOrEqual(lifo)
  })

  it('evicts an inactive expert before an active one; among inactive the most recently inserted (configurable)', () => {
    const lifo = new ExpertCache(2, 4, lifoPolicy())
    lifo.access([0, 1])
    expect(lifo.access([2]).steps[0]!.evicted).toBe(1)
    const fifoOrder = new ExpertCache(2, 4, lifoPolicy({ inactiveOrder: 'fifo' }))
    fifoOrder.access([0, 1])
    expect(fifoOrder.access([2]).steps[0]!.evicted).toBe(0)
    // Active experts are kept: batch {0, 3} with {0, 1} resident evicts inactive 1, not 0.
    const keep = new ExpertCache(2, 4, lifoPolicy())
    keep.access([0])
    keep.access([1])
    expect(keep.access([0, 3]).steps.map((s) => s.evicted)).toEqual([-1, 1])
  })

  it('LFU keeps the most accessed expert', () => {
    const cache = new ExpertCache(2, 4, lfuPolicy())
    cache.access([0])
    cache.access([0])
    cache.access([1])
    expect(cache.access([2]).steps[0]!.evicted).toBe(1)
  })

  it('protectActive keeps every active expert resident when they fit, whatever the policy', () => {
    const cache = new ExpertCache(3, 6, fifoPolicy())
    cache.access([0, 1])
    cache.access([2])
    // FIFO alone would evict 0 (oldest) while loading 4; protected, it evicts 2.
    const r = cache.access([0, 1, 4], { protectActive: true })
    expect(r.steps.map((s) => s.evicted)).toEqual([-1, -1, 2])
    expect(cache.resident()).toEqual([0, 1, 4])
  })

  it('bypass: a batch larger than the cache streams its misses and leaves the resident set alone', () => {
    const cache = new ExpertCache(2, 8, lifoPolicy())
    cache.access([0, 1])
    const r = cache.access([0, 1, 2, 3, 4], { bypass: true })
    expect(r).toMatchObject({ bypassed: true, hits: 2, misses: 3, evictions: 0 })
    expect(r.steps.filter((s) => s.kind === 'stream').map((s) => s.expert)).toEqual([2, 3, 4])
    expect(cache.resident()).toEqual([0, 1])
  })

  it('prefetch loads ahead, counts prefetch hits and wasted prefetches', () => {
    const cache = new ExpertCache(2, 8, lifoPolicy())
    cache.access([0])
    const p = cache.prefetch([5])
    expect(p.steps).toHaveLength(1)
    const r = cache.access([5])
    expect(r).toMatchObject({ hits: 1, prefetchHits: 1 })
    // {0, 5} resident, neither predicted: LIFO evicts 5, the most recently inserted.
    expect(cache.prefetch([6]).steps[0]!.evicted).toBe(5)
    expect(cache.unusedPrefetched()).toBe(1)
    // 6 is never used: loading 1 evicts it (inactive, last in) and it counts as wasted.
    const r2 = cache.access([1, 2])
    expect(r2.steps.map((s) => s.evicted)).toEqual([6, 0])
    expect(r2.prefetchWasted).toBe(1)
    expect(cache.unusedPrefetched()).toBe(0)
  })

  it('clone() is independent of the original', () => {
    const cache = new ExpertCache(2, 4, lifoPolicy())
    cache.access([0, 1])
    const copy = cache.clone()
    copy.access([2, 3])
    expect(cache.resident()).toEqual([0, 1])
    expect(copy.resident()).toEqual([2, 3])
  })

  it('rejects a policy that returns a non-candidate', () => {
    const bad: EvictionPolicy = { name: 'bad', victim: () => ({ expert: 99, slot: 0, insertedAt: 0, lastUsedAt: 0, hits: 0, prefetched: false }) }
    const cache = new ExpertCache(1, 4, bad)
    cache.access([0])
    expect(() => cache.access([1])).toThrow(expect.objectContaining({ code: 'MOE_ROUTE_ERR_PLUGIN_FAILED' }))
  })

  it('Belady is a lower bound for every policy on random traces', () => {
    const names = ['lifo', 'fifo', 'lru', 'lfu', 'lifo-lfu', 'lifo-pure']
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 10 }),
        fc.array(fc.uniqueArray(fc.integer({ min: 0, max: 9 }), { minLength: 1, maxLength: 6 }), { minLength: 1, maxLength: 40 }),
        fc.integer({ min: 1, max: 10 }),
        (E, raw, s) => {
          const batches = raw.map((b) => [...new Set(b.map((e) => e % E))].sort((a, c) => a - c))
          const slots = Math.min(s, E)
          const opt = run(beladyPolicy(), slots, E, batches, true).misses
          for (const n of names) expect(run(resolveEvictionPolicy(n), slots, E, batches).misses).toBeGreaterThanOrEqual(opt)
        },
      ),
      { numRuns: 200 },
    )
  })
})
