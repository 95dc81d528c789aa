import { writeFileSync } from 'node:fs'
import { ErrorCodes, topKIndices, type TokenBatch } from '@moe-route/core'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { expectMoeError, tempDir } from '../io/test-utils.js'
import { writeJsonlTrace, type TraceRecord } from '../jsonl/jsonl.js'
import { writeNpy } from '../npy/npy.js'
import { writeSafetensors } from '../safetensors/safetensors.js'
import { recordsToBatches, traceBatches, traceFormatOf, traceStats } from './trace.js'

let tmp: ReturnType<typeof tempDir>
beforeEach(() => {
  tmp = tempDir()
})
afterEach(() => tmp.cleanup())

async function collect(it: AsyncIterable<TokenBatch>): Promise<TokenBatch[]> {
  const out: TokenBatch[] = []
  for await (const b of it) out.push(b)
  return out
}

function topk(scores: Float32Array, E: number, k: number, t: number): number[] {
  const idx = new Int32Array(k)
  topKIndices(scores, t * E, E, k, idx)
  return [...idx]
}

/** 10 tokens at layers 0 and 3; layer 3 token t goes to [(t+1)%8, t%8]. */
function records(): TraceRecord[] {
  const out: TraceRecord[] = []
  for (let t = 0; t < 10; t++) {
    out.push({ layer: 0, token: t, experts: [0, 1], weights: [0.9, 0.1] })
    out.push({ layer: 3, token: t, experts: [(t + 1) % 8, t % 8], weights: [0.7, 0.3] })
  }
  return out
}

describe('traceFormatOf', () => {
  it('maps extensions and rejects others', () => {
    expect(traceFormatOf('a/b.JSONL')).toBe('jsonl')
    expect(traceFormatOf('x.ndjson')).toBe('jsonl')
    expect(traceFormatOf('x.npy')).toBe('npy')
    expect(traceFormatOf('x.safetensors')).toBe('safetensors')
    expect(() => traceFormatOf('x.csv')).toThrow(/cannot tell the trace format/)
  })
})

describe('traceBatches from JSONL', () => {
  it('batches one layer with scores whose top-k are the recorded experts and whose top-k weights match', async () => {
    const path = tmp.file('t.jsonl')
    await writeJsonlTrace(path, records())
    const batches = await collect(traceBatches(path, { experts: 8, layer: 3, tokensPerBatch: 4, seed: 1 }))
    expect(batches.map((b) => [b.id, b.tokens])).toEqual([
      [0, 4],
      [1, 4],
      [2, 2],
    ])
    for (const [bi, b] of batches.entries()) {
      const scores = b.scores as Float32Array
      expect(scores.length).toBe(b.tokens * 8)
      for (let t = 0; t < b.tokens; t++) {
        const g = bi * 4 + t
        expect(topk(scores, 8, 2, t)).toEqual([(g + 1) % 8, g % 8])
        const a = scores[t * 8 + ((g + 1) % 8)]
        const c = scores[t * 8 + (g % 8)]
        expect(a / (a + c)).toBeCloseTo(0.7, 5)
      }
    }
  })

  it('defaults to the first layer, infers E, honours batches/tokens limits and is seeded', async () => {
    const path = tmp.file('t.jsonl')
    await writeJsonlTrace(path, records())
    const all = await collect(traceBatches(path, { tokensPerBatch: 3 }))
    expect(all.map((b) => b.tokens)).toEqual([3, 3, 3, 1])
    expect((all[0].scores as Float32Array).length).toBe(3 * 8) // E inferred as max id + 1 over all layers
    expect(topk(all[0].scores as Float32Array, 8, 2, 0)).toEqual([0, 1])
    expect((await collect(traceBatches(path, { tokensPerBatch: 3, batches: 2 }))).length).toBe(2)
    expect((await collect(traceBatches(path, { tokensPerBatch: 3, tokens: 5 }))).map((b) => b.tokens)).toEqual([3, 2])
    const again = await collect(traceBatches(path, { tokensPerBatch: 3 }))
    expect(again[1].scores).toEqual(all[1].scores)
    const other = await collect(traceBatches(path, { tokensPerBatch: 3, seed: 2 }))
    expect(other[1].scores).not.toEqual(all[1].scores)
  })

  it('rejects ids ≥ E and mixed k with TRACE_CORRUPT naming the record', async () => {
    const path = tmp.file('bad.jsonl')
    await writeJsonlTrace(path, records())
    await expectMoeError(collect(traceBatches(path, { experts: 4, layer: 3, tokensPerBatch: 4 })), ErrorCodes.TRACE_CORRUPT, /bad\.jsonl: line 8: expert id 4 is out of range/)
    await expectMoeError(
      collect(recordsToBatches([{ layer: 0, token: 0, experts: [1, 2] }, { layer: 0, token: 1, experts: [3] }], { experts: 8, tokensPerBatch: 8, file: 'mem' })),
      ErrorCodes.TRACE_CORRUPT,
      /mem: record 2 \(token 1\): has 1 experts, expected 2/,
    )
  })
})

describe('traceBatches from tensors', () => {
  const T = 7
  const E = 4
  const logits = Float32Array.from({ length: T * E }, (_, i) => ((i * 7) % 11) - 5)

  it('streams .npy float32 and float16 logits in batches', async () => {
    for (const dtype of ['f32', 'f16'] as const) {
      const path = tmp.file(`l-${dtype}.npy`)
      await writeNpy(path, logits, [T, E], dtype)
      const batches = await collect(traceBatches(path, { tokensPerBatch: 3 }))
      expect(batches.map((b) => b.tokens)).toEqual([3, 3, 1])
      expect(batches[0].scores).toBeUndefined()
      expect([...(batches[1].logits as Float32Array)]).toEqual([...logits.subarray(12, 24)])
    }
  })

  it('picks a layer of an [L × T × E] tensor and passes scores through as scores', async () => {
    const path = tmp.file('s.safetensors')
    const three = Float32Array.from({ length: 2 * T * E }, (_, i) => i / 100)
    await writeSafetensors(path, { router: { dtype: 'F32', shape: [2, T, E], data: three }, other: { dtype: 'F16', shape: [1], data: [0] } })
    const batches = await collect(traceBatches(path, { tensor: 'router', layer: 1, values: 'scores', tokensPerBatch: 4, experts: 4 }))
    expect(batches.map((b) => b.tokens)).toEqual([4, 3])
    expect((batches[0].scores as Float32Array)[0]).toBeCloseTo((T * E) / 100, 6)
    await expectMoeError(collect(traceBatches(path, { tokensPerBatch: 4 })), ErrorCodes.INPUT_INVALID, /has 2 tensors \(router, other\): pass tensor/)
    await expectMoeError(collect(traceBatches(path, { tensor: 'router', layer: 2, tokensPerBatch: 4 })), ErrorCodes.INPUT_INVALID, /layer 2 is outside/)
    await expectMoeError(collect(traceBatches(path, { tensor: 'router', experts: 8, tokensPerBatch: 4 })), ErrorCodes.TRACE_CORRUPT, /has 4 experts in its last axis, expected 8/)
  })

  it('rejects NaN logits naming the file and row', async () => {
    const bad = logits.slice()
    bad[5 * E + 2] = NaN
    const path = tmp.file('nan.npy')
    await writeNpy(path, bad, [T, E])
    const err = await expectMoeError(collect(traceBatches(path, { tokensPerBatch: 2 })), ErrorCodes.TRACE_CORRUPT, /nan\.npy: row 5: value NaN at expert 2/)
    expect(err.details.record).toBe('row 5')
    const st = tmp.file('nan.safetensors')
    await writeSafetensors(st, { l: { dtype: 'BF16', shape: [T, E], data: bad } })
    await expectMoeError(traceStats(st, { topK: 1 }), ErrorCodes.TRACE_CORRUPT, /row 5/)
  })

  it('rejects a 1-d tensor and a missing file', async () => {
    const path = tmp.file('v.npy')
    await writeNpy(path, [1, 2, 3], [3])
    await expectMoeError(collect(traceBatches(path, { tokensPerBatch: 2 })), ErrorCodes.TRACE_CORRUPT, /shape \[3\] is not \[tokens × experts\]/)
    await expectMoeError(collect(traceBatches(tmp.file('no.npy'), { tokensPerBatch: 2 })), ErrorCodes.FILE_NOT_FOUND, /no\.npy/)
    await expectMoeError(collect(traceBatches(tmp.file('no.jsonl'), { tokensPerBatch: 2 })), ErrorCodes.FILE_NOT_FOUND, /no\.jsonl/)
  })
})

describe('traceStats', () => {
  it('computes per-expert load and per-batch max/mean of a JSONL layer', async () => {
    const path = tmp.file('s.jsonl')
    // 8 tokens on 4 experts, top-1: first 4 tokens all expert 0, then one each on 0..3
    const recs = [0, 0, 0, 0, 0, 1, 2, 3].map((e, t) => ({ layer: 2, token: t, experts: [e] }))
    writeFileSync(path, recs.map((r) => JSON.stringify(r)).join('\n') + '\n')
    const s = await traceStats(path, { experts: 4, batchSizes: [4, 8, 16] })
    expect(s).toMatchObject({ format: 'jsonl', layer: 2, topK: 1, tokens: 8, pairs: 8, experts: 4, load: [5, 1, 1, 1] })
    expect(s.maxMean).toBeCloseTo(2.5, 12) // 5 / (8/4)
    expect(s.minMean).toBeCloseTo(0.5, 12)
    expect(s.perBatch).toEqual([
      { batchSize: 4, batches: 2, meanMaxMean: 2.5, p95MaxMean: 1 + 0.95 * 3, maxMaxMean: 4 }, // [4,0,0,0] → 4, [1,1,1,1] → 1; p95 interpolates
      { batchSize: 8, batches: 1, meanMaxMean: 2.5, p95MaxMean: 2.5, maxMaxMean: 2.5 },
      { batchSize: 16, batches: 0, meanMaxMean: 0, p95MaxMean: 0, maxMaxMean: 0 },
    ])
  })

  it('takes the top-k of each row of a logits tensor, and needs topK', async () => {
    const path = tmp.file('l.npy')
    // 4 tokens × 3 experts; argmax: 2, 2, 0, 1
    await writeNpy(path, [0, 1, 5, 0, 1, 5, 9, 1, 2, 0, 3, 1], [4, 3], 'f16')
    const s = await traceStats(path, { topK: 1, batchSizes: [2] })
    expect(s.load).toEqual([1, 1, 2])
    expect(s.perBatch[0]).toMatchObject({ batches: 2, maxMaxMean: 3 })
    await expectMoeError(traceStats(path), ErrorCodes.INPUT_INVALID, /need topK/)
  })
})
