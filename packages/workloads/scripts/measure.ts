/**
 * Measures each generator against the recorded statistics (README "How close are the
 * generators?"). Run: node packages/workloads/scripts/measure.mjs (bundles this file with
 * esbuild, then runs it). Prints a markdown table.
 */
import { expertCounts, llamaMoeCoactivation, LoadAccumulator, loadDistance, maxMean, workloadFromSpec } from '../src/index.js'

const TOKENS = Number(process.env.TOKENS ?? 1 << 20)
const SEED = Number(process.env.SEED ?? 1)
const specs = (process.argv[2] ?? '').split(',').filter(Boolean)

function recordedLoad(spec: string): number[] {
  const [model, domain, layerText] = spec.split(':')
  if (model === 'uniform') return workloadFromSpec(spec).targetLoad.map((x) => x)
  const layer = Number(layerText.slice(5))
  if (model === 'llama-moe') {
    const M = llamaMoeCoactivation().matrices[domain][layer]
    return M.map((row, i) => row.reduce((a, b, j) => a + b + M[j][i], 0) / 2)
  }
  const key = model === 'mixtral' || model === 'mixtral-marginal' ? 'mistral' : model
  const m = expertCounts()[key]
  return m.domains[domain].topk[m.layers.indexOf(layer)]
}

const rows: string[] = []
rows.push('| workload | recorded max/mean | generated max/mean | TV(load) | per batch 512: mean / p95 | 2048: mean / p95 | 8192: mean / p95 | ms per 1M tokens |')
rows.push('|---|---|---|---|---|---|---|---|')
for (const spec of specs) {
  const w = workloadFromSpec(spec)
  const acc = new LoadAccumulator(w.experts)
  const t0 = performance.now()
  for (const c of w.choices({ tokensPerBatch: 8192, tokens: TOKENS, seed: SEED })) acc.addTokens(c.expertIds, w.topK)
  const ms = ((performance.now() - t0) * (1 << 20)) / TOKENS
  const s = acc.result()
  const rec = recordedLoad(spec)
  const f = (x: number) => x.toFixed(2)
  rows.push(
    `| \`${spec}\` | ${f(maxMean(rec))} | ${f(s.maxMean)} | ${loadDistance(rec, s.load).toFixed(4)} | ${s.perBatch.map((b) => `${f(b.meanMaxMean)} / ${f(b.p95MaxMean)}`).join(' | ')} | ${ms.toFixed(0)} |`,
  )
}
console.log(rows.join('\n'))

// Throughput of full TokenBatches (choices + synthesized gate scores), batches of 2048.
if (process.env.SCORES) {
  const out = ['', '| workload | TokenBatch tokens/s (batches of 2048, with scores) |', '|---|---|']
  for (const spec of specs) {
    const w = workloadFromSpec(spec)
    const t0 = performance.now()
    let n = 0
    for (const b of w.batchesSync({ tokensPerBatch: 2048, tokens: 1 << 18, seed: SEED })) n += b.tokens
    out.push(`| \`${spec}\` | ${Math.round(n / ((performance.now() - t0) / 1000)).toLocaleString('en-US')} |`)
  }
  console.log(out.join('\n'))
}
