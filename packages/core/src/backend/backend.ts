import { defineToken } from '../tokens.js'
import type { DispatchPlan, LayerWeights } from '../types.js'

/** What a backend says about itself (shown in reports). */
export interface BackendInfo {
  readonly name: string
  /** Adapter or device description, e.g. `llvmpipe` or `NVIDIA H100 80GB HBM3`. */
  readonly adapter?: string
  readonly [key: string]: unknown
}

/** Output of the expert stage, with optional kernel timings (ms). */
export interface ExpertsResult {
  /** tokens × hidden, combined in token order (dropped pairs contribute 0). */
  readonly output: Float32Array
  readonly kernels?: Record<string, number>
  /** Set when this call was finished on a fallback backend (device lost, out of memory). */
  readonly fallback?: { readonly from: string; readonly to: string; readonly reason: string }
}

/** Runs the layer's kernels. */
export interface Backend {
  readonly name: string
  info(): BackendInfo
  /** Gate matmul: logits[T×E] = x[T×H] · router[E×H]ᵀ. */
  gate(x: Float32Array, tokens: number, weights: LayerWeights): Promise<Float32Array>
  /** Grouped SwiGLU experts over the plan's groups, then the weighted combine. */
  experts(x: Float32Array, plan: DispatchPlan, weights: LayerWeights): Promise<ExpertsResult>
  dispose?(): void | Promise<void>
}
export const Backend = defineToken<Backend>('Backend')
