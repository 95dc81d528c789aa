import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { simulateCache } from './simulate-cache.js'
import { batchRecords } from './cache-trace.js'
import { cacheTableSvg, formatCacheTable } from './report.js'
import { crossLayerPredictor, rankNextExperts } from './prefetch.js'
import { sampleRecordedTrace } from './sampler.js'
import { expertBufferStore, PACKAGE_NAME, PACKAGE_VERSION } from '../store/expert-buffer.plugin.js'
import { ExpertBufferStore } from '../store/expert-buffer-store.js'

const cyclic = { experts: 4, batches: Array.from({ length: 10 }, () => ({ active: [3, 1, 2, 2] })) }

describe('simulateCache', () => {
  it('reports progress after each (policy, slots) row', () => {
    const seen: [number, number][] = []
    simulateCache(cyclic, { slots: [1, 2, 3], policies: ['lifo', 'lru'], onProgress: (done, total) => seen.push([done, total]) })
    expect(seen).toEqual([1, 2, 3, 4, 5, 6].map((d) => [d, 6]))
  })

  it('reports miss rates per policy and slots, Belady lowest, and static memory saved', () => {
    const t = simulateCache(cyclic, { slots: [1, 2, 3, 4], policies: ['lifo', 'fifo', 'lru', 'belady'], expertBytes: 100 })
    const get = (p: string, s: number) => t.rows.find((r) => r.policy === p && r.slots === s)!
    expect(get('fifo', 2).missRate).toBe(1)
    expect(get('lifo', 2)).toMatchObject({ accesses: 30, misses: 3 + 9 * 2, loads: 21, bytesUploaded: 2100 })
    expect(get('belady', 2).misses).toBeLessThanOrEqual(get('lifo', 2).misses)
    expect(get('lifo', 3).misses).toBe(3)
    expect(get('lifo', 1).staticMemorySaved).toBe(0.75)
    expect(get('lifo', 4)).toMatchObject({ staticMemorySaved: 0, staticBytesSaved: 0 })
    expect(formatCacheTable(t)).toMatch(/slots\s+lifo\s+fifo\s+lru\s+belady\s+static saved/)
  })

  it('splits experts over devices, reports the worst (layer, device) cache, and can warm up', () => {
    const trace = { experts: 4, batches: [{ active: [0, 1, 2] }, { active: [0, 2] }, { active: [1, 3], layer: 1 }] }
    const t = simulateCache(trace, { slots: [1], policies: ['lifo'], devices: 2, placement: [0, 0, 1, 1] })
    expect(t.localExperts).toEqual([2, 2])
    expect(t.rows[0]).toMatchObject({ accesses: 7, misses: 6, worstMissRate: 1 })
    const warm = simulateCache(trace, { slots: [1], policies: ['lifo'], devices: 2, placement: [0, 0, 1, 1], warmupBatches: 1 })
    expect(warm.rows[0]!.accesses).toBe(4)
  })

  it('bypass keeps the working set through a large batch', () => {
    const trace = { experts: 8, batches: [{ active: [0] }, { active: [0, 1, 2, 3, 4] }, { active: [0] }] }
    const plain = simulateCache(trace, { slots: [2], policies: ['lifo'] }).rows[0]!
    const bypass = simulateCache(trace, { slots: [2], policies: ['lifo'], bypassLargeBatches: true }).rows[0]!
    expect(bypass).toMatchObject({ misses: 5, bypassedBatches: 1 })
    expect(plain.misses).toBe(5) // 0 survives LIFO here too...
    const trace2 = { experts: 8, batches: [{ active: [7] }, { active: [0, 1, 2, 3] }, { active: [7] }] }
    // ...but not when the working set has a high id: the sweep evicts it, bypass keeps it.
    expect(simulateCache(trace2, { slots: [2], policies: ['lifo'] }).rows[0]!.misses).toBe(6)
    expect(simulateCache(trace2, { slots: [2], policies: ['lifo'], bypassLargeBatches: true }).rows[0]!.misses).toBe(5)
  })

  it('prefetch with a perfect predictor turns next-layer misses into prefetch hits', () => {
    const trace = { experts: 8, batches: Array.from({ length: 6 }, (_, i) => [{ layer: 0, active: [i % 8] }, { layer: 1, active: [(i + 3) % 8] }]).flat() }
    const t = simulateCache(trace, { slots: [2], policies: ['lifo'], prefetch: (layer, active) => (layer === 0 ? { layer: 1, experts: [(active[0]! + 3) % 8] } : null) })
    expect(t.rows[0]).toMatchObject({ prefetchHits: 6, prefetchWasted: 0, misses: 6 })
  })

  it('rejects bad slots, unknown experts and policies with stable codes', () => {
    expect(() => simulateCache(cyclic, { slots: [0], policies: ['lifo'] })).toThrow(expect.objectContaining({ code: 'MOE_ROUTE_ERR_STORE_SLOTS_INVALID' }))
    expect(() => simulateCache(cyclic, { slots: [5], policies: ['lifo'] })).toThrow(expect.objectContaining({ code: 'MOE_ROUTE_ERR_STORE_SLOTS_INVALID' }))
    expect(() => simulateCache({ experts: 4, batches: [{ active: [4] }] }, { slots: [1], policies: ['lifo'] })).toThrow(
      expect.objectContaining({ code: 'MOE_ROUTE_ERR_STORE_EXPERT_UNKNOWN', message: expect.stringContaining('batch 0') }),
    )
    expect(() => simulateCache(cyclic, { slots: [1], policies: ['nope'] })).toThrow(expect.objectContaining({ code: 'MOE_ROUTE_ERR_STORE_POLICY_UNKNOWN' }))
  })

  it('writes an SVG with one line per policy', () => {
    const svg = cacheTableSvg(simulateCache(cyclic, { slots: [1, 2, 3, 4], policies: ['lifo', 'belady'] }))
    expect(svg.startsWith('<svg')).toBe(true)
    expect(svg.match(/<polyline/g)).toHaveLength(2)
    expect(svg).toContain('<title>belady</title>')
  })
})

describe('traces and predictors', () => {
  it('batches JSONL-style records per layer in forward-pass order', () => {
    const records = [0, 1, 2].flatMap((token) => [0, 1].map((layer) => ({ layer, token, experts: [token, (token + layer) % 4] })))
    const t = batchRecords(records, { experts: 4, batch: 2 })
    expect(t.batches).toEqual([
      { layer: 0, tokens: 2, active: [0, 1] },
      { layer: 1, tokens: 2, active: [0, 1, 2] },
      { layer: 0, tokens: 1, active: [2] },
      { layer: 1, tokens: 1, active: [2, 3] },
    ])
    expect(() => batchRecords([{ layer: 0, token: 0, experts: [9] }], { experts: 4 })).toThrow(expect.objectContaining({ code: 'MOE_ROUTE_ERR_STORE_EXPERT_UNKNOWN' }))
  })

  it('ranks next-layer experts by conditional transition mass', () => {
    const m = [
      [0, 9, 1],
      [5, 0, 5],
      [0, 0, 0],
    ]
    expect(rankNextExperts(m, [0])).toEqual([1, 2])
    expect(crossLayerPredictor({ count: 1, transitions: [{ from: 0, to: 7, matrix: m }] })(0, [0, 1])).toEqual({ layer: 7, experts: [1] })
  })

  it('samples recorded routing: k distinct experts per token, skew kept', () => {
    const data = JSON.parse(readFileSync(new URL('./fixtures/olmoe-c4.json', import.meta.url), 'utf8'))
    const trace = sampleRecordedTrace(data, { batches: 50, tokens: 1, seed: 3 })
    expect(trace.batches).toHaveLength(150)
    for (const b of trace.batches) expect(b.active).toHaveLength(8)
    const freq = new Array(64).fill(0)
    for (const b of trace.batches.filter((x) => x.layer === 0)) for (const e of b.active) freq[e]++
    const top = data.topk[0].indexOf(Math.max(...data.topk[0]))
    expect(freq[top]).toBeGreaterThan(50 * 8 / 64 * 2)
  })
})

describe('expert-buffer plugin', () => {
  it('meta matches package.json and create builds a store over the placement', async () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'))
    expect([PACKAGE_NAME, PACKAGE_VERSION]).toEqual([pkg.name, pkg.version])
    expect(expertBufferStore.kind).toBe('store')
    const store = expertBufferStore.create(
      { ...expertBufferStore.meta.defaultOptions, slots: 2, prefetch: 'history' },
      { model: { experts: 8, topK: 2, hidden: 4, intermediate: 8, normalizeTopK: true }, devices: 2, seed: 1,
        placement: { devices: 2, experts: 8, strategy: 'x', replicas: [0, 1, 0, 1, 0, 1, 0, 1].map((d) => [d]) } },
    ) as ExpertBufferStore
    const t = await store.prepare({ batchId: 0, active: [0, 1], counts: new Int32Array(8) })
    expect(t).toMatchObject({ misses: 2, bytesUploaded: 2 * 3 * 4 * 8 * 4 })
    expect(store.slotOf(1)).toEqual({ device: 1, slot: 0 })
    await store.dispose()
  })
})

describe('cacheTableSvg', () => {
  it('keeps coinciding lines visible and names the trace by its file name', () => {
    const t = simulateCache({ ...cyclic, name: '../traces/cyclic.jsonl' }, { slots: [1, 2, 3, 4], policies: ['lifo', 'lfu', 'belady'] })
    const svg = cacheTableSvg(t)
    expect(svg).toContain('Miss rate vs slots per device (E=4, cyclic.jsonl)')
    const lines = [...svg.matchAll(/<polyline [^>]*stroke-width="([\d.]+)"[^>]*points/g)].map((m) => [m[0], m[1], /stroke-dasharray="([^"]+)"/.exec(m[0])?.[1]])
    expect(lines).toHaveLength(3)
    // each later line is thinner, so one drawn over another leaves its halo; patterns differ
    expect(Number(lines[0][1])).toBeGreaterThan(Number(lines[1][1]))
    expect(new Set(lines.map((l) => l[2] ?? 'solid')).size).toBe(3)
    expect(svg).toMatch(/>lifo: [\d.]+% at 4<\/text>/)
  })
})
