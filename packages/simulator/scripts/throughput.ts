/**
 * Throughput of the simulator on one thread: a million tokens per configuration through
 * capacity-drop (γ = 1.0) on contiguous placement, timing only `sim.step` (the policy and the
 * expert-parallel cost) on the workload's routings (scores made lazily), and the whole loop
 * with generation. Run: npm run bench -w @moe-route/simulator
 */
import { contiguousPlacement } from '@moe-route/core'
import { createTokenDrop } from '@moe-route/policy-capacity/capacity-drop'
import { popularityWorkload, uniformWorkload } from '@moe-route/workloads'
import { createSimulator } from '../src/index.js'

const TOKENS = Number(process.argv[2] ?? 1_000_000)
const configs = [
  { label: 'OLMoE-like 64E top-8 on 8 devices', w: popularityWorkload('olmoe', 'c4', 7), D: 8, hidden: 2048, intermediate: 1024 },
  { label: 'Mixtral-like 8E top-2 on 8 devices', w: uniformWorkload(8, 2), D: 8, hidden: 4096, intermediate: 14336 },
  { label: 'uniform 256E top-8 on 256 devices', w: uniformWorkload(256, 8), D: 256, hidden: 7168, intermediate: 2048 },
]
for (const c of configs) {
  const model = { experts: c.w.experts, topK: c.w.topK, hidden: c.hidden, intermediate: c.intermediate, normalizeTopK: c.w.normalizeTopK }
  const sim = createSimulator({ model, placement: contiguousPlacement(c.w.experts, c.D), policies: process.env.NOPOLICY ? [] : [createTokenDrop({ capacityFactor: 1 })], keepBatches: false })
  let stepMs = 0
  const t0 = performance.now()
  for (const batch of c.w.routings({ tokensPerBatch: 8192, tokens: TOKENS, seed: 1 })) {
    const s = performance.now()
    sim.step(batch)
    stepMs += performance.now() - s
  }
  const total = (performance.now() - t0) / 1000
  const r = sim.result().summary
  console.log(
    `${c.label}: ${r.tokens} tokens in ${(stepMs / 1000).toFixed(2)} s of simulation (${Math.round(r.tokens / (stepMs / 1000)).toLocaleString('en-US')} tokens/s); ` +
      `${total.toFixed(2)} s with workload generation; speedup ${r.speedup.toFixed(3)}, dropped ${(r.droppedFraction * 100).toFixed(2)}%`,
  )
}
