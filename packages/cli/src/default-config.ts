/**
 * The embedded default of `moe-route run`: a Mixtral-8x7B-shaped layer scaled down 16×
 * in H and I (H 4096 → 256, I 14336 → 896; E 8, k 2, renormalised top-2) so it runs in
 * seconds on a CPU, fed with Mixtral token-expert replay of recorded C4 text at layer 7,
 * under capacity-aware token drop at γ = 1.0 with score priority (the paper's tightest table
 * setting; at its Mixtral setting γ = 1.5 this workload drops nothing: per-batch max/mean ≈ 1.2).
 */
import type { MoeConfig } from '@moe-route/core'

export const DEFAULT_CONFIG: MoeConfig = {
  model: { name: 'mixtral-8x7b (H, I scaled 1/16)', experts: 8, topK: 2, hidden: 256, intermediate: 896, normalizeTopK: true },
  policies: [{ use: 'capacity-drop', options: { capacityFactor: 1.0, priority: 'score' } }],
  workload: { source: 'mixtral:c4:layer7', tokensPerBatch: 512, batches: 16, seed: 1 },
  weights: { seed: 1, std: 0.02 },
  stream: { capacity: 8 },
  seed: 1,
}
