/** The example's layer and policy settings (shared by the page and its test). */

/** Mixtral-8x7B's MoE layer: E, k and renormalisation as the model; H 4096 → 256, I 14336 → 896. */
export const MODEL = { name: 'mixtral-8x7b (H, I scaled 1/16)', experts: 8, topK: 2, hidden: 256, intermediate: 896, normalizeTopK: true }

/** The capacity factors the page offers (the first is the default). */
export const GAMMAS = [1, 1.25, 1.5, 2] as const

/** The config of the layer: capacity-drop at γ, seeded weights (generated on the GPU by webgpu). */
export function layerConfig(gamma: number, backend: 'webgpu' | null = 'webgpu') {
  return {
    model: MODEL,
    ...(backend ? { backend: { use: backend } } : {}),
    policies: [{ use: 'capacity-drop', options: { capacityFactor: gamma } }],
    weights: { seed: 1, std: 0.05 },
    seed: 1,
  }
}
