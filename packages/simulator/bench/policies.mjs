#!/usr/bin/env node
// Host paths of the capacity family on one thread: pairs per second of `apply` on DeepSeek-
// shaped batches (8,192 tokens × top-8 of 256 experts, uniform routing with lazily made
// scores, 64 devices), at γ 1.0 (≈ 2.4% over capacity) and γ 1.25 (nothing over).
//   node packages/simulator/bench/policies.mjs [--batches 16] [--out results.json]
// Needs the built packages (npx turbo run build).
import { writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { contiguousPlacement, mulberry32 } from '@moe-route/core'
import { createTokenDrop } from '@moe-route/policy-capacity/capacity-drop'
import { createDeviceCapacity } from '@moe-route/policy-capacity/device-capacity'
import { createExpandedDrop } from '@moe-route/policy-capacity/expanded-drop'
import { createExpertDrop } from '@moe-route/policy-capacity/expert-drop'
import { createReroute } from '@moe-route/policy-capacity/reroute'
import { createSpareCapacityReroute } from '@moe-route/policy-capacity/spare-capacity-reroute'
import { uniformWorkload } from '@moe-route/workloads'

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? process.argv[i + 1] : dflt
}
const B = Number(arg('batches', 16))
const placement = contiguousPlacement(256, 64)
const batches = () => [...uniformWorkload(256, 8).routings({ tokensPerBatch: 8192, batches: B, seed: 1 })]
const policies = [
  ['capacity-drop (score)', (g) => createTokenDrop({ capacityFactor: g })],
  ['capacity-drop (random)', (g) => createTokenDrop({ capacityFactor: g, priority: 'random' })],
  ['device-capacity', (g) => createDeviceCapacity({ capacityFactor: g })],
  ['expert-drop (10% of E)', () => createExpertDrop({ drop: 0.1 })],
  ['spare-capacity-reroute', (g) => createSpareCapacityReroute({ capacityFactor: g })],
  ['reroute (2 rounds)', (g) => createReroute({ capacityFactor: g, rounds: 2 })],
  ['expanded-drop (local)', (g) => createExpandedDrop({ capacityFactor: g })],
]
const rows = []
for (const [name, make] of policies) {
  for (const gamma of [1.0, 1.25]) {
    const policy = make(gamma)
    const runs = []
    for (let run = 0; run < 3; run++) {
      const rs = batches() // fresh routings: no score row made by an earlier run
      let pairs = 0
      const t0 = performance.now()
      for (let b = 0; b < rs.length; b++) {
        policy.apply(rs[b], { placement, batchId: b, random: mulberry32(b) })
        pairs += rs[b].expertIds.length
      }
      runs.push({ seconds: (performance.now() - t0) / 1000, pairs })
    }
    const best = runs.map((r) => r.pairs / r.seconds).sort((a, b) => a - b)[1]
    rows.push({ policy: name, gamma, pairsPerSecond: Math.round(best) })
    process.stderr.write(`${name} γ ${gamma}: ${(best / 1e6).toFixed(1)} M pairs/s\n`)
  }
}
const out = arg('out')
if (out) writeFileSync(out, JSON.stringify({ date: new Date().toISOString().slice(0, 10), machine: { cpu: cpus()[0]?.model, cores: cpus().length, node: process.version }, shape: { tokensPerBatch: 8192, topK: 8, experts: 256, devices: 64, batches: B }, rows }, null, 2) + '\n')
console.log('| policy | γ 1.0 | γ 1.25 |')
console.log('|---|---|---|')
for (let i = 0; i < rows.length; i += 2) console.log(`| ${rows[i].policy} | ${(rows[i].pairsPerSecond / 1e6).toFixed(1)} M pairs/s | ${(rows[i + 1].pairsPerSecond / 1e6).toFixed(1)} M pairs/s |`)
