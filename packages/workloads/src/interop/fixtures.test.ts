import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { openRoutingRecord } from './open-record.js'
import { recordCounts } from './record.js'

const dir = join(import.meta.dirname, '../../test/fixtures/interop')
const truth = (m: string) => JSON.parse(readFileSync(join(dir, `${m}-truth.json`), 'utf8'))

describe('engine fixtures written by torch, numpy and safetensors', () => {
  for (const m of ['olmoe', 'mixtral']) {
    const t = truth(m)
    it.each([
      [`${m}-vllm-routed-experts.npy`, 'vllm-npy', 'tokens'],
      [`${m}-sglang-expert-distribution-stat.pt`, 'sglang-stat', 'counts'],
      [`${m}-trtllm-stats`, 'trtllm-stats', 'counts'],
    ])('%s: per-layer counts equal the truth', async (file, format, kind) => {
      const rec = await openRoutingRecord(join(dir, file))
      try {
        expect(rec.format).toBe(format)
        expect(rec.kind).toBe(kind)
        expect(rec.experts).toBe(t.experts)
        expect(rec.layers).toHaveLength(t.layers)
        const { counts, steps } = await recordCounts(rec)
        expect(counts.map((c) => [...c])).toEqual(t.counts)
        if (kind === 'counts') {
          expect(steps).toBe(t.steps)
          const per: number[][][] = []
          for await (const s of rec.steps()) per.push(s.counts.map((c) => [...c]))
          expect(per).toEqual(t.stepCounts)
        }
      } finally {
        await rec.close()
      }
    })
  }
})

describe('SGLang per_pass / per_token dumps (torch.save, make_sglang_detail.py)', () => {
  for (const m of ['olmoe', 'mixtral']) {
    const t = JSON.parse(readFileSync(join(dir, `${m}-sglang-detail-truth.json`), 'utf8'))
    it.each([
      [`${m}-sglang-expert-distribution-per-pass.pt`, 'sglang-per-pass', 'counts'],
      [`${m}-sglang-expert-distribution-per-token.pt`, 'sglang-per-token', 'tokens'],
    ])('%s maps physical to logical experts and sums to the truth', async (file, format, kind) => {
      const rec = await openRoutingRecord(join(dir, file))
      try {
        expect([rec.format, rec.kind, rec.experts, rec.layers.length]).toEqual([format, kind, t.experts, t.layers])
        const { counts, steps } = await recordCounts(rec)
        expect(counts.map((c) => [...c])).toEqual(t.counts)
        if (kind === 'tokens') {
          expect(rec.topK).toBe(t.topK)
          expect(rec.tokens).toBe(t.tokens)
          let n = 0
          for await (const c of rec.chunks()) n += c.tokens
          expect(n).toBe(t.tokens)
        } else expect(steps).toBe(t.passes)
      } finally {
        await rec.close()
      }
    })
  }
})

describe('Megatron router traces (make-megatron.mjs)', () => {
  it('two ranks, layers 3 and 7, MTP skipped, counts equal the truth', async () => {
    const t = JSON.parse(readFileSync(join(dir, 'olmoe-megatron-truth.json'), 'utf8'))
    const rec = await openRoutingRecord(join(dir, 'olmoe-megatron-router-trace'), { experts: 64 })
    try {
      expect([rec.format, rec.layers, rec.ranks, rec.tokens, rec.meta.mtpRecordsSkipped]).toEqual(['megatron-jsonl', t.layers, 2, t.tokens, 2])
      expect((await recordCounts(rec)).counts.map((c) => [...c])).toEqual(t.counts)
    } finally {
      await rec.close()
    }
  })
})
