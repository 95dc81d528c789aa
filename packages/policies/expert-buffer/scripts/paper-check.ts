/**
 * Checks Expert Buffering's claims on the recorded routing data (moe-route data/routing).
 * Run from the repo root: node --experimental-strip-types is not enough for the package's
 * .js-suffixed imports, so this script is bundled on the fly:
 *   npx esbuild packages/policies/expert-buffer/scripts/paper-check.ts --bundle --platform=node \
 *     --format=esm --outfile=/tmp/paper-check.mjs && node /tmp/paper-check.mjs [path/to/expert-counts.json]
 * Prints JSON: per model/domain/batch size, miss rates per policy and slot count.
 */
import { readFileSync } from 'node:fs'
import { crossLayerPredictor } from '../src/simulate/prefetch.js'
import { sampleRecordedTrace } from '../src/simulate/sampler.js'
import { simulateCache } from '../src/simulate/simulate-cache.js'

const path = process.argv[2] ?? '/work/shared/data/routing/expert-counts.json'
const data = JSON.parse(readFileSync(path, 'utf8')) as {
  models: Record<string, { experts: number; topK: number; layers: number[]; domains: Record<string, { topk: number[][]; crossLayer?: { matrices: number[][][] } }> }>
}
const policies = ['lifo', 'fifo', 'lru', 'lfu', 'lifo-lfu', 'belady']
const out: unknown[] = []
const cases: [string, string, number, number][] = [
  ['mistral', 'c4', 1, 1],
  ['mistral', 'c4', 4, 1],
  ['mistral', 'github', 1, 1],
  ['olmoe', 'c4', 1, 1],
  ['olmoe', 'c4', 4, 1],
  ['olmoe', 'arxiv', 4, 1],
  ['olmoe', 'c4', 8, 4],
]
for (const [model, domain, tokens, devices] of cases) {
  const m = data.models[model]!
  const d = m.domains[domain]!
  const trace = sampleRecordedTrace(
    { experts: m.experts, topK: m.topK, layers: m.layers, topk: d.topk, crossLayer: d.crossLayer?.matrices },
    { batches: model === 'olmoe' ? 300 : 1000, tokens, seed: 42, name: `${model}/${domain}/T=${tokens}` },
  )
  const local = m.experts / devices
  const slots = Array.from({ length: local }, (_, i) => i + 1)
  const t0 = performance.now()
  const table = simulateCache(trace, { slots, policies, devices, warmupBatches: 20 })
  const ms = performance.now() - t0
  const meanActive = trace.batches.reduce((a, b) => a + b.active.length, 0) / trace.batches.length
  const row = (p: string) => table.rows.filter((r) => r.policy === p).map((r) => +r.missRate.toFixed(4))
  const worst = (p: string) => table.rows.filter((r) => r.policy === p).map((r) => +r.worstMissRate.toFixed(4))
  const res: Record<string, unknown> = { trace: trace.name, devices, localExperts: local, meanActivePerLayer: +meanActive.toFixed(2), simulateMs: Math.round(ms) }
  for (const p of policies) res[p] = row(p)
  res.worstLifo = worst('lifo')
  res.worstBelady = worst('belady')
  if (model === 'olmoe' && devices === 1 && d.crossLayer) {
    const predict = crossLayerPredictor({ count: Math.max(1, Math.round(meanActive / 2)), transitions: [
      { from: m.layers[0]!, to: m.layers[1]!, matrix: d.crossLayer.matrices[0]! },
      { from: m.layers[1]!, to: m.layers[2]!, matrix: d.crossLayer.matrices[1]! },
    ] })
    const pf = simulateCache(trace, { slots, policies: ['lifo'], prefetch: predict, warmupBatches: 20 })
    res.lifoPrefetch = pf.rows.map((r) => +r.missRate.toFixed(4))
    res.lifoPrefetchHits = pf.rows.map((r) => r.prefetchHits)
    res.lifoPrefetchWasted = pf.rows.map((r) => r.prefetchWasted)
  }
  out.push(res)
}
console.log(JSON.stringify(out, null, 1))
