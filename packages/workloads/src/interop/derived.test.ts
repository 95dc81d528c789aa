/**
 * The other layouts of each engine, derived here from the real fixtures with moe-route's own
 * writers: vLLM ids as int32 safetensors and as JSON, TensorRT-LLM statistics split over two
 * ranks, Megatron router traces of two ranks. Each must give the fixture's truth.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { tempDir } from '../io/test-utils.js'
import { openIntNpy } from '../npy/npy.js'
import { openSafetensors, writeSafetensors } from '../safetensors/safetensors.js'
import { openRoutingRecord, sniffRecordFormat } from './open-record.js'
import { recordCounts } from './record.js'

const dir = join(import.meta.dirname, '../../test/fixtures/interop')
const tmp = tempDir()
afterAll(() => tmp.cleanup())
const truth = JSON.parse(readFileSync(join(dir, 'olmoe-truth.json'), 'utf8'))
let ids: Int32Array
let T = 0
let L = 0
let k = 0

beforeAll(async () => {
  const npy = await openIntNpy(join(dir, 'olmoe-vllm-routed-experts.npy'))
  ;[T, L, k] = npy.shape
  ids = await npy.readInts(0, T * L * k)
  await npy.close()
})

async function counts(path: string) {
  const rec = await openRoutingRecord(path)
  try {
    const c = await recordCounts(rec)
    return { rec, counts: c.counts.map((r) => [...r]), steps: c.steps }
  } finally {
    await rec.close()
  }
}

describe('derived engine layouts give the truth', () => {
  it('vLLM ids as an int32 safetensors tensor', async () => {
    const f = tmp.file('routed.safetensors')
    await writeSafetensors(f, { routed_experts: { dtype: 'I32', shape: [T, L, k], bytes: new Uint8Array(ids.buffer.slice(0)) } })
    expect(await sniffRecordFormat(f)).toBe('vllm-safetensors')
    const r = await counts(f)
    expect(r.counts).toEqual(truth.counts)
    expect([r.rec.topK, r.rec.tokens, r.rec.experts]).toEqual([k, T, 64])
  })

  it.each(['array', 'object'])('vLLM ids as JSON (%s form)', async (form) => {
    const rows = Array.from({ length: T }, (_, t) => Array.from({ length: L }, (_, l) => Array.from(ids.subarray((t * L + l) * k, (t * L + l + 1) * k))))
    const f = tmp.file(`routed-${form}.json`)
    writeFileSync(f, JSON.stringify(form === 'array' ? rows : { routed_experts: rows }))
    const r = await counts(f)
    expect(r.rec.format).toBe('vllm-json')
    expect(r.counts).toEqual(truth.counts)
  })

  it('TensorRT-LLM statistics of two ranks are summed', async () => {
    const d = tmp.file('trt2')
    mkdirSync(d)
    writeFileSync(join(d, 'meta_info.json'), readFileSync(join(dir, 'olmoe-trtllm-stats', 'meta_info.json')))
    const st = await openSafetensors(join(dir, 'olmoe-trtllm-stats', 'rank0.safetensors'))
    const a: Record<string, { dtype: 'I32'; shape: number[]; bytes: Uint8Array }> = {}
    const b: typeof a = {}
    for (const name of st.names) {
      const v = await st.readInts(name, 0, 64)
      const half = Int32Array.from(v, (x) => Math.floor(x / 3))
      const rest = Int32Array.from(v, (x, i) => x - half[i])
      a[name] = { dtype: 'I32', shape: [64], bytes: new Uint8Array(half.buffer) }
      b[name] = { dtype: 'I32', shape: [64], bytes: new Uint8Array(rest.buffer) }
    }
    await st.close()
    await writeSafetensors(join(d, 'rank0.safetensors'), a)
    await writeSafetensors(join(d, 'rank1.safetensors'), b)
    const r = await counts(d)
    expect([r.rec.ranks, r.steps]).toEqual([2, truth.steps])
    expect(r.counts).toEqual(truth.counts)
  })

  it('Megatron router traces of two ranks (decoder layers 3 and 7, an MTP record skipped)', async () => {
    const d = tmp.file('megatron')
    mkdirSync(d)
    const perStep = 512
    for (const rank of [0, 1]) {
      const lines: string[] = []
      const half = T / 2
      for (let s = 0; s * perStep < half; s++) {
        for (const [i, layer] of [3, 7].entries()) {
          const rows = []
          for (let t = rank * half + s * perStep; t < rank * half + (s + 1) * perStep; t++) rows.push(Array.from(ids.subarray((t * L + i) * k, (t * L + i + 1) * k)))
          lines.push(JSON.stringify({ step: s, stage: 'pre_dispatch', block: 'decoder', layer, rank, num_tokens: perStep, topk: k, top_indices: rows }))
        }
        if (s === 0) lines.push(JSON.stringify({ step: 0, stage: 'pre_dispatch', block: 'mtp', layer: 3, rank, num_tokens: 1, topk: k, top_indices: [Array.from(ids.subarray(0, k))], mtp_idx: 0 }))
      }
      writeFileSync(join(d, `router_trace_rank${rank}.jsonl`), lines.join('\n') + '\n')
    }
    expect(await sniffRecordFormat(d)).toBe('megatron-jsonl')
    const r = await counts(d)
    expect([r.rec.layers, r.rec.ranks, r.rec.tokens, r.rec.meta.mtpRecordsSkipped]).toEqual([[3, 7], 2, T, 2])
    expect(r.counts).toEqual(truth.counts)
  })
})

describe('corrupt vLLM JSON', () => {
  it.each([
    ['truncated', '[[[1,2]],[[3,'],
    ['ragged layers', '[[[1,2]],[[3,4],[5,6]]]'],
    ['not ids', '[[[1,"x"]]]'],
    ['not an array', '{"something": 1}'],
  ])('%s', async (name, text) => {
    const f = tmp.file(`bad-${name.replace(/ /g, '-')}.json`)
    writeFileSync(f, text)
    await expect(counts(f)).rejects.toMatchObject({ code: 'MOE_ROUTE_ERR_TRACE_CORRUPT', details: { file: f } })
  })
})
