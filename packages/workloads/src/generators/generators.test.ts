import { ErrorCodes, topKIndices, type TokenBatch } from '@moe-route/core'
import { describe, expect, it } from 'vitest'
import { expertCounts, llamaMoeCoactivation, mixtralTokenExperts, mixtralTokens } from '../data/data.js'
import { expectMoeError } from '../io/test-utils.js'
import { LoadAccumulator, loadDistance } from '../stats/load-stats.js'
import { llamaMoePairsWorkload, mixtralReplayWorkload, popularityWorkload, uniformWorkload } from './generators.js'
import { DEFAULT_WORKLOAD, listWorkloadSpecs, workloadFromSpec } from './spec.js'
import { detokenizeMistral, tokenizeMistral } from './tokenize.js'
import { routingFromChoices, type Workload } from './workload.js'

function loadOf(w: Workload, tokens: number, seed = 1) {
  const acc = new LoadAccumulator(w.experts, [512])
  for (const c of w.choices({ tokensPerBatch: 4096, tokens, seed })) acc.addTokens(c.expertIds, w.topK)
  return acc.result()
}

describe('workloadFromSpec', () => {
  it('builds every family with the right shape and conventions', () => {
    expect(workloadFromSpec('mixtral:c4:layer7')).toMatchObject({ spec: 'mixtral:c4:layer7', experts: 8, topK: 2, normalizeTopK: true })
    expect(workloadFromSpec('olmoe:arxiv:layer0')).toMatchObject({ experts: 64, topK: 8, normalizeTopK: false })
    expect(workloadFromSpec('olmoe-dpo:tulu:layer15')).toMatchObject({ experts: 64, topK: 8 })
    expect(workloadFromSpec('mixtral-marginal:github:layer15')).toMatchObject({ experts: 8, topK: 2, normalizeTopK: true })
    expect(workloadFromSpec('llama-moe:topt_3:layer31')).toMatchObject({ experts: 8, topK: 2 })
    expect(workloadFromSpec(' uniform:E=16:k=4 ')).toMatchObject({ spec: 'uniform:E=16:k=4', experts: 16, topK: 4 })
    expect(workloadFromSpec(DEFAULT_WORKLOAD).spec).toBe(DEFAULT_WORKLOAD)
  })

  it('lists concrete specs that all parse', () => {
    const specs = listWorkloadSpecs()
    expect(specs).toContain('mixtral:arxiv:layer15')
    expect(specs).toContain('llama-moe:base:layer3')
    expect(specs.length).toBe(3 * 3 * 2 + 4 * 3 + 3 + 3 + 7 * 32)
    for (const s of specs.filter((_, i) => i % 17 === 0)) expect(workloadFromSpec(s).spec).toBe(s)
  })

  for (const [spec, why] of [
    ['gpt4:c4:layer7', /unknown model 'gpt4'/],
    ['mixtral:wiki:layer7', /no recorded domain "wiki"/],
    ['mixtral:c4:layer8', /layer 8 was not recorded/],
    ['olmoe:c4:7', /'7' is not layer<N>/],
    ['llama-moe:topt_9:layer0', /unknown variant "topt_9"/],
    ['llama-moe:base:layer32', /layer 32 is outside 0..31/],
    ['uniform:E=4:k=5', /1 ≤ k ≤ E/],
    ['mixtral', /expected <model>:<domain>:layer<N>/],
  ] as const) {
    it(`rejects '${spec}' naming it and listing the valid specs`, async () => {
      const err = await expectMoeError(() => workloadFromSpec(spec), ErrorCodes.INPUT_INVALID, new RegExp(`'${spec}'`), why, /Valid specs: mixtral:\{arxiv,c4,github\}:layer\{0,7,15\}/)
      expect(err.details.spec).toBe(spec)
      expect(err.details.valid).toContain('uniform:E=<experts>:k=<topK>')
    })
  }
})

describe('workload streams', () => {
  it('are reproducible per seed, differ across seeds and do not depend on the batch size', () => {
    const w = workloadFromSpec('mixtral:c4:layer7')
    const ids = (o: { tokensPerBatch: number; seed: number }) => {
      const out: number[] = []
      for (const c of w.choices({ ...o, tokens: 3000 })) out.push(...c.expertIds)
      return out
    }
    const a = ids({ tokensPerBatch: 512, seed: 5 })
    expect(ids({ tokensPerBatch: 1000, seed: 5 })).toEqual(a)
    expect(ids({ tokensPerBatch: 512, seed: 6 })).not.toEqual(a)
    const s1 = [...w.batchesSync({ tokensPerBatch: 700, tokens: 2100, seed: 5 })].map((b) => b.scores)
    const s2 = [...w.batchesSync({ tokensPerBatch: 700, tokens: 2100, seed: 5 })].map((b) => b.scores)
    expect(s2).toEqual(s1)
  })

  it('yields core TokenBatches whose top-k scores are the drawn choices, async and sync alike', async () => {
    const w = workloadFromSpec('olmoe:c4:layer7')
    const o = { tokensPerBatch: 300, batches: 3, seed: 2, firstBatchId: 10 }
    const sync = [...w.batchesSync(o)]
    const asyncBatches: TokenBatch[] = []
    for await (const b of w.batches(o)) asyncBatches.push(b)
    expect(asyncBatches).toEqual(sync)
    expect(sync.map((b) => [b.id, b.tokens])).toEqual([
      [10, 300],
      [11, 300],
      [12, 300],
    ])
    const choices = [...w.choices(o)]
    const idx = new Int32Array(8)
    for (let b = 0; b < 3; b++) {
      for (let t = 0; t < 300; t += 37) {
        topKIndices(sync[b].scores as Float32Array, t * 64, 64, 8, idx)
        expect([...idx]).toEqual([...choices[b].expertIds.subarray(t * 8, t * 8 + 8)])
      }
    }
  })

  it('writes records with token positions and weights from the scores', () => {
    const w = workloadFromSpec('mixtral:github:layer0')
    const recs = [...w.records({ tokensPerBatch: 4, tokens: 10, seed: 1, layer: 0 })]
    expect(recs.map((r) => r.token)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9])
    for (const r of recs) {
      expect(r.experts.length).toBe(2)
      expect(r.weights?.[0]).toBeGreaterThan(r.weights?.[1] as number)
      expect((r.weights?.[0] as number) + (r.weights?.[1] as number)).toBeCloseTo(1, 5)
    }
    const olmoe = [...workloadFromSpec('olmoe:c4:layer0').records({ tokensPerBatch: 4, tokens: 3 })]
    for (const r of olmoe) expect(r.weights?.reduce((a, b) => a + b, 0)).toBeLessThan(1) // raw softmax probabilities
  })

  it('validates run options', () => {
    const w = uniformWorkload(8, 2)
    expect(() => [...w.choices({ tokensPerBatch: 0 })]).toThrow(/tokensPerBatch must be a positive integer/)
    expect(() => [...w.choices({ tokensPerBatch: 4, tokens: -1 })]).toThrow(/tokens must be/)
    expect(() => [...w.choices({ tokensPerBatch: 4, seed: 0.5 })]).toThrow(/seed must be an integer/)
    expect([...w.choices({ tokensPerBatch: 4, batches: 0 })]).toEqual([])
  })
})

describe('calibration against the recorded data', () => {
  it('popularity workloads reproduce the recorded per-expert load (OLMoE arxiv layer 0: max/mean 7.81)', () => {
    const w = popularityWorkload('olmoe', 'arxiv', 0)
    const s = loadOf(w, 60_000)
    const recorded = expertCounts().olmoe.domains.arxiv.topk[0]
    expect(loadDistance(recorded, s.load)).toBeLessThan(0.01)
    expect(s.maxMean).toBeCloseTo(7.81, 1)
    // every token has 8 distinct experts
    for (const c of w.choices({ tokensPerBatch: 1000, batches: 1 })) {
      for (let t = 0; t < 1000; t++) expect(new Set(c.expertIds.subarray(t * 8, t * 8 + 8)).size).toBe(8)
    }
  })

  it('the first slot follows the recorded top-1 counts', () => {
    const w = popularityWorkload('mixtral-marginal', 'c4', 15)
    const first = new Array(8).fill(0)
    for (const c of w.choices({ tokensPerBatch: 5000, tokens: 40_000 })) for (let t = 0; t < c.tokens; t++) first[c.expertIds[t * 2]]++
    const top1 = expertCounts().mistral.domains.c4.top1?.[2] as number[]
    expect(loadDistance(top1, first)).toBeLessThan(0.03)
  })

  it('LLaMA-MoE pairs follow the co-activation matrix and never repeat an expert', () => {
    const w = llamaMoePairsWorkload('base', 0)
    const M = llamaMoeCoactivation().matrices.base[0]
    const seen = Array.from({ length: 8 }, () => new Array(8).fill(0))
    for (const c of w.choices({ tokensPerBatch: 10_000, tokens: 50_000, seed: 3 })) {
      for (let t = 0; t < c.tokens; t++) seen[c.expertIds[2 * t]][c.expertIds[2 * t + 1]]++
    }
    for (let i = 0; i < 8; i++) expect(seen[i][i]).toBe(0)
    expect(loadDistance(M.flat(), seen.flat())).toBeLessThan(0.02)
    expect(loadOf(w, 50_000).maxMean).toBeCloseTo(2.06, 1) // SPEC D: LLaMA-MoE layer 0 max/mean 2.06
  })

  it('Mixtral replay draws a token id from what it received, falls back to the marginal for unseen ids', () => {
    const table = mixtralTokenExperts('c4')[1] // layer 7
    let pinned = -1
    let pair: number[] = []
    for (let i = 0; i < table.ids.length && pinned < 0; i++) {
      const c = table.counts.subarray(i * 8, i * 8 + 8)
      const nz = [...c.keys()].filter((e) => c[e] > 0)
      if (nz.length === 2 && c[nz[0]] >= 3) {
        pinned = table.ids[i]
        pair = nz
      }
    }
    expect(pinned).toBeGreaterThanOrEqual(0)
    const w = mixtralReplayWorkload('c4', 7, { tokenIds: [pinned], start: 0 })
    for (const c of w.choices({ tokensPerBatch: 100, batches: 1 })) {
      for (let t = 0; t < 100; t++) expect([c.expertIds[2 * t], c.expertIds[2 * t + 1]].sort()).toEqual(pair)
    }
    const known = new Set(table.ids)
    let unseen = 31999
    while (known.has(unseen)) unseen--
    const fb = loadOf(mixtralReplayWorkload('c4', 7, { tokenIds: [unseen] }), 40_000)
    expect(loadDistance(expertCounts().mistral.domains.c4.topk[1], fb.load)).toBeLessThan(0.01)
  })

  it('Mixtral replay keeps document locality: batches are more uneven than i.i.d. draws from the same marginal', () => {
    const replay = loadOf(workloadFromSpec('mixtral:arxiv:layer7'), 200_000)
    const iid = loadOf(workloadFromSpec('mixtral-marginal:arxiv:layer7'), 200_000)
    expect(loadDistance(replay.load, iid.load)).toBeLessThan(0.03)
    expect(replay.perBatch[0].meanMaxMean).toBeGreaterThan(iid.perBatch[0].meanMaxMean + 0.03)
  })
})

describe('shipped data and tokenization', () => {
  it('ships the c4 text as Mistral token ids that decode back to the recorded text', async () => {
    const ids = mixtralTokens('c4')
    expect(ids.length).toBe(437_431)
    expect(await detokenizeMistral(ids.subarray(0, 12))).toMatch(/^For all of your plumbing and heating supplies/)
  })

  it('tokenizes line by line exactly as the whole text', async () => {
    const text = 'Hello world!\n  def f(x):\n\treturn x\n\nThe end.'
    expect([...(await tokenizeMistral('Hello world!'))]).toEqual([22557, 1526, 28808])
    const ids = await tokenizeMistral(text)
    expect(await detokenizeMistral(ids)).toBe(text)
  })

  it('replays user text through the recorded routing', async () => {
    const w = mixtralReplayWorkload('github', 15, { tokenIds: await tokenizeMistral('for (let i = 0; i < n; i++) {}\n'), start: 0 })
    expect(loadOf(w, 2000).tokens).toBe(2000)
  })
})

describe('uniform workload draws skip the id check because they are valid by construction', () => {
  it('every token has k distinct ids in range, for rejection and partial-shuffle shapes', () => {
    for (const [E, k] of [[256, 8], [64, 8], [8, 2], [8, 5], [8, 8], [3, 2], [1, 1]] as const) {
      for (const seed of [0, 1, 99]) {
        for (const r of uniformWorkload(E, k).routings({ tokensPerBatch: 257, batches: 3, seed })) {
          // the checked entry point throws on an out-of-range or repeated id
          expect(() => routingFromChoices(r.expertIds, { experts: E, topK: k })).not.toThrow()
          expect(r.expertIds.length).toBe(257 * k)
        }
      }
    }
  })
})
