/**
 * Token Drop on realistic workloads: dropped fraction (SPEC Eq. 11), gate mass kept, max/mean
 * load before and after, and the relative L2 error of the CPU reference layer output against
 * no dropping, for γ = 1.0, 1.5, 2.0. Run from the repository root:
 *   npx tsx --conditions=@moe-route/source packages/policies/capacity/scripts/realistic.ts
 */
import os from 'node:os'
import { createTokenDrop } from '../src/index.js'
import { BATCHES, measure, prepare, table, TOKENS_PER_BATCH, WORKLOADS, type Row } from './measure.js'

const rows: Row[] = []
const t0 = performance.now()
for (const wl of WORKLOADS) {
  const w = prepare(wl.label, wl.spec, wl.devices, TOKENS_PER_BATCH, BATCHES)
  for (const gamma of [1, 1.5, 2]) {
    rows.push(measure(w, 'score', gamma, createTokenDrop({ capacityFactor: gamma })))
    rows.push(measure(w, 'score, per-source-device', gamma, createTokenDrop({ capacityFactor: gamma, scope: 'per-source-device' })))
    rows.push(measure(w, 'first', gamma, createTokenDrop({ capacityFactor: gamma, priority: 'first' })))
    rows.push(measure(w, 'random', gamma, createTokenDrop({ capacityFactor: gamma, priority: 'random' })))
  }
}
console.log(`<!-- ${BATCHES} batches × ${TOKENS_PER_BATCH} tokens per workload, seed 1; ${os.cpus().length}-core ${os.arch()}, Node ${process.version}; ${((performance.now() - t0) / 1000).toFixed(0)} s -->`)
console.log(table(rows))

// Batch-size sensitivity on the Mixtral-like workloads at γ = 1.5 (score priority): per-batch
// imbalance grows as batches shrink, and so does what a fixed γ drops.
const small: Row[] = []
for (const wl of WORKLOADS.filter((w) => w.spec.startsWith('mixtral'))) {
  for (const T of [128, 512, 2048]) {
    const w = prepare(`${wl.label}, T=${T}`, wl.spec, wl.devices, T, Math.max(BATCHES, (BATCHES * TOKENS_PER_BATCH) / T / 4))
    small.push(measure(w, 'score', 1.5, createTokenDrop({ capacityFactor: 1.5 })))
    small.push(measure(w, 'score, per-source-device', 1.5, createTokenDrop({ capacityFactor: 1.5, scope: 'per-source-device' })))
  }
}
console.log()
console.log(table(small))
