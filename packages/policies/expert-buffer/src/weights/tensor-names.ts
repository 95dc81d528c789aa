/**
 * Tensor names of MoE expert weights in the checkpoint layouts this package maps.
 * Matrices are `nn.Linear` weights `[out × in]`: gate and up `[I × H]`, down `[H × I]`.
 */

/** The tensor names of one expert's three matrices. */
export interface ExpertTensorNames {
  readonly gate: string
  readonly up: string
  readonly down: string
}

/** Names a layer/expert's tensors; pass your own for other checkpoints. */
export type ExpertTensorNamer = (layer: number, expert: number) => ExpertTensorNames

/** Built-in layouts by name. */
export const expertTensorLayouts = {
  /** Mixtral-8x7B: `model.layers.{L}.block_sparse_moe.experts.{e}.w1/w3/w2.weight` (w1 gate, w3 up, w2 down). */
  mixtral: (layer: number, expert: number): ExpertTensorNames => {
    const p = `model.layers.${layer}.block_sparse_moe.experts.${expert}`
    return { gate: `${p}.w1.weight`, up: `${p}.w3.weight`, down: `${p}.w2.weight` }
  },
  /** OLMoE (and Qwen-MoE style): `model.layers.{L}.mlp.experts.{e}.gate_proj/up_proj/down_proj.weight`. */
  olmoe: (layer: number, expert: number): ExpertTensorNames => {
    const p = `model.layers.${layer}.mlp.experts.${expert}`
    return { gate: `${p}.gate_proj.weight`, up: `${p}.up_proj.weight`, down: `${p}.down_proj.weight` }
  },
} as const satisfies Record<string, ExpertTensorNamer>

/** A built-in layout name. */
export type ExpertTensorLayoutName = keyof typeof expertTensorLayouts
