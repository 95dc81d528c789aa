import { mkdtempSync, truncateSync, statSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { writeSafetensors } from '@moe-route/workloads'
import { ExpertBufferStore, historyPredictor } from './expert-buffer-store.js'
import { memoryWeightSource, expertLayout } from '../weights/weight-source.js'
import { openSafetensorsWeights } from '../weights/safetensors-source.js'
import { expertTensorLayouts } from '../weights/tensor-names.js'
import { hostTarget } from '../targets/residency-target.js'

const H = 4
const I = 6
const counts = new Int32Array(8)

/** Expert e's matrices filled with e + position/1000 so contents identify the expert. */
function expertValues(e: number) {
  const fill = (n: number, base: number) => Float32Array.from({ length: n }, (_, i) => e * 10 + base + i / 1000)
  return { gate: fill(I * H, 1), up: fill(I * H, 2), down: fill(H * I, 3) }
}
const layer = { shape: { experts: 8, topK: 2, hidden: H, intermediate: I, normalizeTopK: true }, experts: Array.from({ length: 8 }, (_, e) => expertValues(e)) }

describe('ExpertBufferStore (host target)', () => {
  it('counts hits, misses, evictions and bytes; keeps active experts resident; LIFO among inactive', async () => {
    const store = new ExpertBufferStore({ experts: 8, slots: 3, weights: memoryWeightSource(layer) })
    const bytes = expertLayout(H, I).bytes
    const t1 = await store.prepare({ batchId: 0, active: [2, 0], counts })
    expect(t1).toMatchObject({ hits: 0, misses: 2, evictions: 0, bytesUploaded: 2 * bytes, resident: 2, bypassed: false, loaded: [0, 2] })
    const t2 = await store.prepare({ batchId: 1, active: [0, 5], counts })
    expect(t2).toMatchObject({ hits: 1, misses: 1, evictions: 0, resident: 3 })
    // {0,2,5} resident; batch {0,7}: inactive {2,5}, LIFO evicts 5 (inserted last).
    const t3 = await store.prepare({ batchId: 2, active: [0, 7], counts })
    expect(t3).toMatchObject({ hits: 1, misses: 1, evictions: 1, evicted: [5] })
    expect(store.resident()).toEqual([0, 2, 7])
    expect(t3.uploadMs).toBeGreaterThanOrEqual(0)
    // The slot holds expert 7's bytes.
    const b = store.binding(7)!
    expect(new Float32Array(b.bytes!.buffer, b.bytes!.byteOffset, 1)[0]).toBeCloseTo(71)
    expect(store.binding(5)).toBeNull()
    await store.dispose()
    await expect(store.prepare({ batchId: 3, active: [1], counts })).rejects.toMatchObject({ code: 'MOE_ROUTE_ERR_STORE_DISPOSED' })
  })

  it('bypasses a batch larger than the slots without evicting the decode working set', async () => {
    const store = new ExpertBufferStore({ experts: 8, slots: 2, expertBytes: 100 })
    await store.prepare({ batchId: 0, active: [1, 4], counts })
    const prefill = await store.prepare({ batchId: 1, active: [0, 1, 2, 3, 4, 5], counts })
    // the 4 streamed misses still travel to the device (the backend streams them): 4 × 100 bytes
    expect(prefill).toMatchObject({ bypassed: true, hits: 2, misses: 4, evictions: 0, bytesUploaded: 400, streamed: [0, 2, 3, 5] })
    expect(store.resident()).toEqual([1, 4])
    const noBypass = new ExpertBufferStore({ experts: 8, slots: 2, expertBytes: 100, bypassLargeBatches: false })
    await noBypass.prepare({ batchId: 0, active: [1, 4], counts })
    const sweep = await noBypass.prepare({ batchId: 1, active: [0, 1, 2, 3, 4, 5], counts })
    // The paper's sweep: every slot holds an active expert, so each miss evicts the last inserted.
    expect(sweep).toMatchObject({ bypassed: false, hits: 1, misses: 5, evictions: 5, bytesUploaded: 500, evicted: [4, 0, 2, 3, 4] })
    expect(noBypass.resident()).toEqual([1, 5])
  })

  it('execute() runs each expert while it is resident, streaming bypassed ones', async () => {
    const store = new ExpertBufferStore({ experts: 8, slots: 2, weights: memoryWeightSource(layer) })
    await store.prepare({ batchId: 0, active: [6], counts })
    const seen: [number, number, number][] = []
    const t = await store.execute({ batchId: 1, active: [1, 3, 6], counts }, (e, b) => {
      seen.push([e, b.slot, new Float32Array(b.bytes!.buffer, b.bytes!.byteOffset, 1)[0]!])
    })
    expect(seen.map(([e, s]) => [e, s])).toEqual([[1, -1], [3, -1], [6, 0]])
    seen.forEach(([e, , v]) => expect(v).toBeCloseTo(e * 10 + 1))
    expect(t).toMatchObject({ bypassed: true, bytesUploaded: 2 * expertLayout(H, I).bytes })
  })

  it('splits experts over devices with their own slots', async () => {
    const store = new ExpertBufferStore({ experts: 8, slots: 1, devices: 2, expertBytes: 1 })
    const t = await store.prepare({ batchId: 0, active: [1, 6], counts })
    expect(t).toMatchObject({ misses: 2, resident: 2 })
    expect(store.resident(0)).toEqual([1])
    expect(store.resident(1)).toEqual([6])
    expect(store.slotOf(6)).toEqual({ device: 1, slot: 0 })
    const only1 = await store.prepare({ batchId: 1, active: [2, 6], counts, device: 1 })
    expect(only1).toMatchObject({ hits: 1, misses: 0 })
  })

  it('prefetches in the background and reports prefetch hits and wasted bytes', async () => {
    const store = new ExpertBufferStore({ experts: 8, slots: 3, expertBytes: 10, prefetch: historyPredictor(1) })
    await store.prepare({ batchId: 0, active: [0, 1], counts })
    await store.prepare({ batchId: 1, active: [0, 2], counts }) // {0,1,2}: nothing to prefetch
    // 3 evicts 2 (inactive, last in); the predictor then brings 2 back in the background,
    // evicting 1 (the only expert outside the last batch and the prediction).
    await store.prepare({ batchId: 2, active: [0, 3], counts })
    await store.idle()
    expect(store.resident()).toEqual([0, 2, 3])
    // A manual prefetch (e.g. from the next layer's router) displaces unused 2: wasted.
    const manual = await store.prefetch([5])
    expect(manual).toEqual({ loaded: [5], bytes: 10 })
    const t = await store.prepare({ batchId: 3, active: [0, 5], counts })
    expect(t).toMatchObject({ hits: 2, misses: 0, prefetchHits: 1, prefetchWastedBytes: 10 })
  })

  it('rejects bad slots, unknown experts and Belady without a future, with stable codes', async () => {
    expect(() => new ExpertBufferStore({ experts: 8, slots: 0 })).toThrow(expect.objectContaining({ code: 'MOE_ROUTE_ERR_STORE_SLOTS_INVALID' }))
    expect(() => new ExpertBufferStore({ experts: 8, slots: 9 })).toThrow(expect.objectContaining({ code: 'MOE_ROUTE_ERR_STORE_SLOTS_INVALID' }))
    expect(() => new ExpertBufferStore({ experts: 8, slots: 5, devices: 2 })).toThrow(expect.objectContaining({ code: 'MOE_ROUTE_ERR_STORE_SLOTS_INVALID' }))
    expect(() => new ExpertBufferStore({ experts: 8, slots: 2, eviction: 'mru' })).toThrow(expect.objectContaining({ code: 'MOE_ROUTE_ERR_STORE_POLICY_UNKNOWN' }))
    expect(() => new ExpertBufferStore({ experts: 8, slots: 2, eviction: 'belady' })).toThrow(expect.objectContaining({ code: 'MOE_ROUTE_ERR_STORE_FUTURE_REQUIRED' }))
    const store = new ExpertBufferStore({ experts: 8, slots: 2 })
    await expect(store.prepare({ batchId: 0, active: [8], counts })).rejects.toMatchObject({ code: 'MOE_ROUTE_ERR_STORE_EXPERT_UNKNOWN' })
    expect(store.resident()).toEqual([])
  })

  it('runs Belady when given the future', async () => {
    const future = [[0, 1], [2], [0], [1]]
    const store = new ExpertBufferStore({ experts: 4, slots: 2, eviction: 'belady', future, expertBytes: 1 })
    let misses = 0
    for (const [i, a] of future.entries()) misses += (await store.prepare({ batchId: i, active: a, counts })).misses
    // 0,1 | 2 evicts 1 (used later than 0) | 0 hit | 1 miss
    expect(misses).toBe(4)
  })
})

describe('safetensors weights', () => {
  const dir = mkdtempSync(join(tmpdir(), 'expert-buffer-'))
  async function writeCheckpoint(path: string, layout: 'mixtral' | 'olmoe', L: number, experts: number) {
    const tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = {}
    tensors['model.layers.0.other.weight'] = { dtype: 'F32', shape: [2], data: new Float32Array(2) }
    for (let e = 0; e < experts; e++) {
      const n = expertTensorLayouts[layout](L, e)
      const v = expertValues(e)
      tensors[n.gate] = { dtype: 'F32', shape: [I, H], data: v.gate }
      tensors[n.up] = { dtype: 'F32', shape: [I, H], data: v.up }
      tensors[n.down] = { dtype: 'F32', shape: [H, I], data: v.down }
    }
    await writeSafetensors(path, tensors)
  }

  it('maps Mixtral and OLMoE tensor names and reads experts into the slot layout', async () => {
    for (const layout of ['mixtral', 'olmoe'] as const) {
      const path = join(dir, `${layout}.safetensors`)
      await writeCheckpoint(path, layout, 3, 4)
      const w = await openSafetensorsWeights({ files: path, layer: 3, layout })
      expect(w.experts).toBe(4)
      expect(w.layout).toMatchObject({ hidden: H, intermediate: I, dtype: 'f32' })
      const bytes = await w.read(2)
      const f = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4)
      expect(f[0]).toBeCloseTo(21)
      expect(f[I * H]).toBeCloseTo(22) // up follows gate
      expect(f[2 * I * H + 5]).toBeCloseTo(23.005) // down follows up
      await w.close?.()
    }
    expect(expertTensorLayouts.mixtral(1, 2).down).toBe('model.layers.1.block_sparse_moe.experts.2.w2.weight')
    expect(expertTensorLayouts.olmoe(1, 2).up).toBe('model.layers.1.mlp.experts.2.up_proj.weight')
  })

  it('a truncated file is TRACE_CORRUPT at open; a read failing later leaves resident experts and slot contents intact', async () => {
    const path = join(dir, 'trunc.safetensors')
    await writeCheckpoint(path, 'mixtral', 0, 3)
    const size = statSync(path).size
    const w = await openSafetensorsWeights({ files: path, layer: 0, layout: 'mixtral' })
    const target = hostTarget({ slots: 2, slotBytes: w.layout.bytes })
    const store = new ExpertBufferStore({ experts: 3, slots: 2, weights: w, target: () => target })
    await store.prepare({ batchId: 0, active: [0, 1], counts })
    const before = [store.binding(0)!.bytes!.slice(), store.binding(1)!.bytes!.slice()]
    truncateSync(path, size - 8) // expert 2's down matrix loses its tail
    await expect(store.prepare({ batchId: 1, active: [2], counts })).rejects.toMatchObject({
      code: 'MOE_ROUTE_ERR_STORE_LOAD_FAILED',
      details: { expert: 2, causeCode: 'MOE_ROUTE_ERR_TRACE_CORRUPT' },
    })
    expect(store.resident()).toEqual([0, 1])
    expect(target.uploads).toBe(2)
    expect(store.binding(0)!.bytes).toEqual(before[0])
    expect(store.binding(1)!.bytes).toEqual(before[1])
    // Hits still work after the failure.
    expect(await store.prepare({ batchId: 2, active: [0, 1], counts })).toMatchObject({ hits: 2, misses: 0 })
    await store.dispose()
    await expect(openSafetensorsWeights({ files: path, layer: 0, layout: 'mixtral' })).rejects.toMatchObject({ code: 'MOE_ROUTE_ERR_TRACE_CORRUPT' })
  })

  it('names a missing tensor', async () => {
    const path = join(dir, 'olmoe-only.safetensors')
    await writeCheckpoint(path, 'olmoe', 0, 2)
    await expect(openSafetensorsWeights({ files: path, layer: 0, layout: 'mixtral' })).rejects.toMatchObject({
      code: 'MOE_ROUTE_ERR_STORE_WEIGHTS_INVALID',
      details: { record: 'model.layers.0.block_sparse_moe.experts.0.w1.weight' },
    })
  })
})
