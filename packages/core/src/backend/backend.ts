import type { Dispatcher } from '../dispatcher/dispatcher.js'
import type { PlacementMap } from '../placement/placement.js'
import type { RoutingPolicy } from '../policy/policy.js'
import type { Router } from '../router/router.js'
import type { ExpertStore } from '../store/expert-store.js'
import type { TelemetryCounts } from '../telemetry/telemetry.js'
import { defineToken } from '../tokens.js'
import type {
  DeviceTensor,
  DispatchPlan,
  DroppedPair,
  ForwardOptions,
  LayerWeights,
  ModelShape,
  ReroutedPair,
  Routing,
  StageTiming,
  StoreTelemetry,
  TokenBatch,
} from '../types.js'

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

/**
 * Where a layer's weights come from. `seeded`: every weight drawn from normal(0, std) by the
 * counter-based generator of {@link seededNormals} (the same values on every backend; a GPU
 * backend generates them on the device). `safetensors`: a checkpoint file (one layer's
 * router and experts, in the `mixtral` or `olmoe` tensor naming). `host`: weights you already
 * hold.
 */
export type WeightSource =
  | { readonly kind: 'seeded'; readonly seed: number; readonly std: number; readonly routerStd?: number }
  | { readonly kind: 'safetensors'; readonly file: string; readonly layer: number; readonly layout: 'mixtral' | 'olmoe' }
  | { readonly kind: 'host'; readonly weights: LayerWeights }

/** Everything a GPU backend needs to run a configured layer as one device pipeline. */
export interface PipelineSpec {
  readonly model: ModelShape
  readonly placement: PlacementMap
  /** Base seed (per-batch, per-policy random streams: `mixSeed(seed, batchId, index)`). */
  readonly seed: number
  readonly router: Router
  readonly policies: readonly RoutingPolicy[]
  readonly dispatcher: Dispatcher
  readonly store?: ExpertStore
  readonly weights: WeightSource
  /** Bytes per activation element on the wire (traffic accounting). */
  readonly activationBytes: number
}

/** Where each stage of a device pipeline runs. */
export interface PipelineStageInfo {
  /** `router:<name>`, `policy:<name>`, `dispatch:<name>`, `store:<name>`, `experts`. */
  readonly stage: string
  readonly where: 'device' | 'host'
}

/** The full routing detail of a batch that ran on a device pipeline (`detail: 'full'`). */
export interface PipelineDetail {
  readonly original: Routing
  readonly routing: Routing
  readonly plan: DispatchPlan
  readonly dropped: readonly DroppedPair[]
  readonly rerouted: readonly ReroutedPair[]
}

/** What one batch through a device pipeline returns to the engine. */
export interface PipelineResult {
  readonly counts: TelemetryCounts
  readonly output?: Float32Array
  readonly outputNorm?: number
  readonly deviceOutput?: DeviceTensor
  readonly detail?: PipelineDetail
  readonly store?: StoreTelemetry
  /** Round trips to the host by plugin. */
  readonly hostRoundTrips: Readonly<Record<string, number>>
  readonly stages: StageTiming[]
  readonly kernels?: Record<string, number>
  readonly fallback?: { readonly from: string; readonly to: string; readonly reason: string }
}

/** A configured layer compiled for one device: every stage encoded into its command stream. */
export interface DevicePipeline {
  /** Where each stage runs (device lowering, or host round trip). */
  readonly stages: readonly PipelineStageInfo[]
  /** Runs one batch (hidden states on the host or on the device). */
  forward(batch: TokenBatch, options: ForwardOptions): Promise<PipelineResult>
  dispose(): Promise<void>
}

/** Runs the layer's kernels. */
export interface Backend {
  readonly name: string
  info(): BackendInfo
  /** Gate matmul: logits[T×E] = x[T×H] · router[E×H]ᵀ. */
  gate(x: Float32Array, tokens: number, weights: LayerWeights): Promise<Float32Array>
  /** Grouped SwiGLU experts over the plan's groups, then the weighted combine. */
  experts(x: Float32Array, plan: DispatchPlan, weights: LayerWeights): Promise<ExpertsResult>
  /**
   * Builds a device pipeline for a configured layer (GPU backends): the engine then runs
   * every batch with hidden states through it, the plugins' GPU lowerings included.
   */
  pipeline?(spec: PipelineSpec): Promise<DevicePipeline>
  /** Host weights from a source (host backends: a `safetensors` file read into f32 arrays). */
  loadWeights?(source: WeightSource, shape: ModelShape): Promise<LayerWeights>
  /** Synthetic hidden states (normal(0, 1), seeded by `seededHiddenStream(seed, batchId)`, as the CPU makes them) made where the backend computes. */
  syntheticHidden?(tokens: number, hidden: number, seed: number): Promise<DeviceTensor | Float32Array>
  dispose?(): void | Promise<void>
}
export const Backend = defineToken<Backend>('Backend')

/** The weight source of a container (optional; see {@link WeightSource}). */
export const LayerWeightSource = defineToken<WeightSource>('LayerWeightSource')
