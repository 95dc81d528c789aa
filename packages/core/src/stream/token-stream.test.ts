import { Subject, firstValueFrom, from, map, toArray } from 'rxjs'
import { TestScheduler } from 'rxjs/testing'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { describe, expect, it } from 'vitest'
import { createMoe } from '../container.js'
import { randomLogits } from '../testing/index.js'
import type { LayerResult, TokenBatch } from '../types.js'
import { moeLayer, routeLayer, toAsyncIterable } from './operators.js'
import { TokenStream } from './token-stream.js'
import { isMoeError } from '../errors.js'

// A real collection before each heap sample (vitest's workers do not run with --expose-gc).
setFlagsFromString('--expose-gc')
const gc = runInNewContext('gc') as () => void

const model = { experts: 8, topK: 2, hidden: 16, intermediate: 32 }
const logits = randomLogits(4, 8, 3)
const batch = (id: number): TokenBatch => ({ id, tokens: 4, logits })

describe('TokenStream backpressure', () => {
  it('keeps memory bounded when 100,000 batches are produced faster than consumed', async () => {
    const engine = createMoe({ config: { model } })
    const capacity = 32
    const stream = new TokenStream(engine, { capacity, maxInFlight: 4 })
    const N = 100_000
    let produced = 0
    const producer = (async () => {
      for (let i = 0; i < N; i++) {
        await stream.write(batch(i))
        produced++
      }
      stream.end()
    })()
    let consumed = 0
    let lastId = -1
    let maxLead = 0
    gc()
    const heapBefore = process.memoryUsage().heapUsed
    let heapPeak = heapBefore
    for await (const r of stream) {
      expect(r.batchId).toBe(lastId + 1) // in order, none lost
      lastId = r.batchId
      consumed++
      maxLead = Math.max(maxLead, produced - consumed)
      if (consumed % 1000 === 0) {
        await new Promise((resolve) => setTimeout(resolve, 1)) // a slow consumer
        if (consumed % 10_000 === 0) {
          gc() // what is retained, not garbage a collection has not reached yet
          heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed)
        }
      }
    }
    await producer
    expect(consumed).toBe(N)
    expect(stream.stats.maxPending).toBeLessThanOrEqual(capacity)
    expect(maxLead).toBeLessThanOrEqual(capacity)
    // 100k results held at once would be ≫ 100 MB; bounded, the heap stays flat.
    expect(heapPeak - heapBefore).toBeLessThan(64 * 1024 * 1024)
  }, 120_000)

  it('tryWrite refuses when full and keeps what was accepted', async () => {
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    const slow = { forward: async (b: TokenBatch) => (await gate, { batchId: b.id } as LayerResult) }
    const stream = new TokenStream(slow, { capacity: 2, maxInFlight: 1 })
    expect(stream.tryWrite(batch(0))).toBe(true)
    expect(stream.tryWrite(batch(1))).toBe(true)
    expect(stream.tryWrite(batch(2))).toBe(false)
    stream.end()
    release()
    const ids: number[] = []
    for await (const r of stream) ids.push(r.batchId)
    expect(ids).toEqual([0, 1])
  })

  it('delivers a failure to the consumer after the results before it', async () => {
    const engine = { forward: async (b: TokenBatch) => { if (b.id === 2) throw new Error('bad batch'); return { batchId: b.id } as LayerResult } }
    const stream = new TokenStream(engine, { capacity: 8 })
    for (let i = 0; i < 4; i++) stream.tryWrite(batch(i))
    stream.end()
    const ids: number[] = []
    await expect((async () => { for await (const r of stream) ids.push(r.batchId) })()).rejects.toThrow('bad batch')
    expect(ids).toEqual([0, 1])
  })
})

describe('moeLayer operator', () => {
  it('routeLayer routes each batch in its frame (marble)', () => {
    const scheduler = new TestScheduler((a, b) => expect(a).toEqual(b))
    const engine = createMoe({ config: { model } })
    scheduler.run(({ cold, expectObservable }) => {
      const src = cold('-a--b-|', { a: batch(0), b: batch(1) })
      const ids = src.pipe(routeLayer(engine), map((r) => `${r.batchId}:${r.telemetry.pairsBefore}`))
      expectObservable(ids).toBe('-a--b-|', { a: '0:8', b: '1:8' })
    })
  })

  it('runs a real engine over an Observable and adapts to async iteration', async () => {
    const engine = createMoe({ config: { model } })
    const results = await firstValueFrom(from([batch(0), batch(1), batch(2)]).pipe(moeLayer(engine, { maxInFlight: 2 }), toArray()))
    expect(results.map((r) => r.batchId)).toEqual([0, 1, 2])
    const ids: number[] = []
    for await (const r of toAsyncIterable(from([batch(5), batch(6)]).pipe(moeLayer(engine)))) ids.push(r.batchId)
    expect(ids).toEqual([5, 6])
  })

  it('errors with STREAM_OVERFLOW past maxQueued, after emitting what was queued', async () => {
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    const engine = { forward: async (b: TokenBatch) => (await gate, { batchId: b.id } as LayerResult) }
    const seen: number[] = []
    const done = new Promise<unknown>((resolve) =>
      from([0, 1, 2, 3, 4].map(batch)).pipe(moeLayer(engine, { maxQueued: 2 })).subscribe({ next: (r) => seen.push(r.batchId), error: resolve }),
    )
    release()
    const err = await done
    expect(isMoeError(err) && err.code).toBe('MOE_ROUTE_ERR_STREAM_OVERFLOW')
    expect(seen).toEqual([0, 1, 2])
  })

  it('an engine failure ends the output with its error; batches the source pushes afterwards are ignored, not thrown', async () => {
    const engine = { forward: async (b: TokenBatch) => (b.id === 0 ? Promise.reject(new Error('engine broke')) : ({ batchId: b.id } as LayerResult)) }
    const source = new Subject<TokenBatch>()
    const got = new Promise<unknown>((resolve) => source.pipe(moeLayer(engine)).subscribe({ next: () => resolve('value'), error: resolve }))
    source.next(batch(0))
    await new Promise((r) => setTimeout(r, 10))
    expect(() => source.next(batch(1))).not.toThrow()
    expect(((await got) as Error).message).toBe('engine broke')
    expect(source.observed).toBe(false)
  })

  it('abort() fails a stream whose producer broke: pending writes reject, the iterator throws after what was accepted', async () => {
    const stream = new TokenStream<LayerResult>({ forward: async (b: TokenBatch) => ({ batchId: b.id, tokens: b.tokens, telemetry: {} }) as unknown as LayerResult }, { capacity: 1 })
    await stream.write({ id: 0, tokens: 1, scores: new Float32Array(1) })
    const blocked = stream.write({ id: 1, tokens: 1, scores: new Float32Array(1) })
    stream.abort(new Error('workload broke'))
    await expect(blocked).rejects.toThrow()
    const seen: number[] = []
    await expect((async () => {
      for await (const r of stream) seen.push(r.batchId)
    })()).rejects.toThrow('workload broke')
    expect(seen).toEqual([0])
  })
})

describe('rxjs values core uses', () => {
  it('are the classes and operators of the rxjs package index (one copy)', async () => {
    const rx = await import('./rx.js')
    const pkg = await import('rxjs')
    expect(rx.Observable).toBe(pkg.Observable)
    expect(rx.Subject).toBe(pkg.Subject)
    expect(rx.map).toBe(pkg.map)
  })
})
