/**
 * Spare-capacity reroute against multi-round reroute, token drop and the other capacity-aware
 * policies on realistic workloads (same batches, weights and measures as capacity-drop's
 * realistic.ts). Run from the repository root:
 *   npx tsx --tsconfig packages/policies/capacity/scripts/tsconfig.json --conditions=@moe-route/source \
 *     packages/policies/capacity/scripts/compare.ts
 */
import os from 'node:os'
import type { RoutingPolicy } from '@moe-route/core'
import { createTokenDrop } from '../src/index.js'
import { createDeviceCapacity } from '../src/index.js'
import { createExpandedDrop } from '../src/index.js'
import { createExpertDrop } from '../src/index.js'
import { createReroute } from '../src/index.js'
import { BATCHES, measure, prepare, table, TOKENS_PER_BATCH, type Row } from './measure.js'
import { createSpareCapacityReroute } from '../src/index.js'

const workloads = [
  { label: 'OLMoE c4 L7', spec: 'olmoe:c4:layer7', devices: 8 },
  { label: 'OLMoE arxiv L0', spec: 'olmoe:arxiv:layer0', devices: 8 },
  { label: 'Mixtral github L15', spec: 'mixtral:github:layer15', devices: 8 },
]

const policies = (gamma: number, experts: number, topK: number): [string, RoutingPolicy][] => [
  ['capacity-drop (score)', createTokenDrop({ capacityFactor: gamma })],
  ['reroute, rounds 2', createReroute({ capacityFactor: gamma, rounds: 2 })],
  ['reroute, rounds 4', createReroute({ capacityFactor: gamma, rounds: 4 })],
  ['spare-capacity-reroute', createSpareCapacityReroute({ capacityFactor: gamma })],
  [`spare-capacity-reroute, maxRank ${2 * topK}`, createSpareCapacityReroute({ capacityFactor: gamma, maxRank: 2 * topK })],
  ['expanded-drop (local, 8 devices)', createExpandedDrop({ capacityFactor: gamma, candidates: 'local' })],
  ['expanded-drop (local, model-native weights)', createExpandedDrop({ capacityFactor: gamma, candidates: 'local', weights: 'model-native' })],
  ['device-capacity (8 devices)', createDeviceCapacity({ capacityFactor: gamma })],
  // The paper's Expert Drop rule: 1 expert for Mixtral-like models, int(0.1·E·γ) otherwise.
  [`expert-drop (${experts <= 8 ? 1 : Math.floor(0.1 * experts * gamma)} experts)`, createExpertDrop({ drop: experts <= 8 ? 1 : Math.min(0.99, 0.1 * gamma) })],
]

const t0 = performance.now()
const out: string[] = []
for (const wl of workloads) {
  const w = prepare(wl.label, wl.spec, wl.devices, TOKENS_PER_BATCH, BATCHES)
  const { experts, topK } = w.batches[0].routing
  const rows: Row[] = []
  for (const gamma of [1, 1.5, 2]) for (const [label, p] of policies(gamma, experts, topK)) rows.push(measure(w, label, gamma, p))
  out.push(table(rows, { moved: true, device: true }))
}
console.log(`<!-- ${BATCHES} batches × ${TOKENS_PER_BATCH} tokens per workload, seed 1; ${os.cpus().length}-core ${os.arch()}, Node ${process.version}; ${((performance.now() - t0) / 1000).toFixed(0)} s -->`)
console.log(out.join('\n\n'))
