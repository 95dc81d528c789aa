import { defineToken } from './tokens.js'

/**
 * The data moe-route passes between stages. Matrices are row-major typed arrays; a
 * `T×E` matrix has `T` rows (tokens) of `E` columns (experts). Weight matrices follow the
 * PyTorch `nn.Linear` convention `[out × in]`, the layout MoE checkpoints ship in.
 */

/** Shape of one MoE layer (everything but the number of tokens, which varies per batch). */
export interface ModelShape {
  /** Routed experts E. */
  readonly experts: number
  /** Experts per token k. */
  readonly topK: number
  /** Hidden size H. */
  readonly hidden: number
  /** Expert intermediate size I. */
  readonly intermediate: number
  /**
   * Whether the model renormalises the top-k gate weights to sum to 1 (Mixtral: true;
   * OLMoE, Qwen1.5-MoE: false, weights stay raw softmax probabilities).
   */
  readonly normalizeTopK: boolean
  /** Optional label, e.g. `mixtral-8x7b`. */
  readonly name?: string
}

/**
 * A routing: for each token, up to `slots` (expert, weight) pairs, plus the gate scores.
 * `expertIds[t*slots + j]` is the expert of slot j of token t, or -1 for an empty slot.
 * Routings are immutable values: policies return new ones.
 */
export interface Routing {
  readonly tokens: number
  readonly experts: number
  /** k asked for by the router. */
  readonly topK: number
  /** Width of the per-token slot arrays (≥ topK; expanded drop may widen it). */
  readonly slots: number
  /** tokens × slots expert ids, -1 = empty. */
  readonly expertIds: Int32Array
  /** tokens × slots combine weights (0 for empty slots). */
  readonly weights: Float32Array
  /** tokens × experts gate probabilities (softmax over all experts unless the router says otherwise). */
  readonly scores: Float32Array
  /** The router's convention (see {@link ModelShape.normalizeTopK}). */
  readonly normalizeTopK: boolean
  /** Device each token lives on under expert parallelism (length tokens); absent = all on device 0. */
  readonly sourceDevice?: Int32Array
  /** True when the batch is decode steps (one token per sequence). */
  readonly decode?: boolean
}

/** One (token, expert) edge. */
export interface Pair {
  readonly token: number
  readonly expert: number
  readonly weight: number
}

/** Why a pair was removed. Plugins may use their own strings. */
export type DropReason =
  | 'capacity'
  | 'device-capacity'
  | 'expert-drop'
  | 'reroute-exhausted'
  | 'static-overflow'
  | 'pruned'
  | (string & {})

/** A pair that a policy removed, with the reason and the policy that removed it. */
export interface DroppedPair extends Pair {
  readonly reason: DropReason
  readonly policy: string
}

/** A pair that a policy moved from one expert to another. */
export interface ReroutedPair {
  readonly token: number
  readonly from: number
  readonly to: number
  readonly weight: number
  readonly policy: string
}

/**
 * A batch of tokens entering a MoE layer. Give `hidden` to run the layer; give `logits` or
 * `scores` to set the routing directly (from a trace, a workload or another runtime's router);
 * with both, the layer runs on `hidden` with the given routing.
 */
export interface TokenBatch {
  /** Caller's id, echoed in results and telemetry. */
  readonly id: number
  readonly tokens: number
  /** tokens × hidden activations. */
  readonly hidden?: Float32Array
  /** tokens × experts router logits. */
  readonly logits?: Float32Array
  /** tokens × experts router probabilities. */
  readonly scores?: Float32Array
  /** tokens × hidden activations already on the backend's device (instead of `hidden`). */
  readonly deviceHidden?: DeviceTensor
  /** Device of each token under expert parallelism. */
  readonly sourceDevice?: Int32Array
  /** One token per sequence (decode step): capacity policies skip it unless told otherwise. */
  readonly decode?: boolean
}

/**
 * Expert groups of exact size (dynamic gating) or padded to a capacity (static gating).
 * Rows `offsets[e] .. offsets[e+1]` belong to expert e; a padding row has token -1 and weight 0.
 */
export interface DispatchPlan {
  readonly mode: 'dynamic' | 'static' | (string & {})
  readonly tokens: number
  readonly experts: number
  /** experts+1 row offsets. */
  readonly offsets: Int32Array
  /** Real (non-padding) rows per expert. */
  readonly counts: Int32Array
  /** Token of each row, -1 for padding. */
  readonly rowToken: Int32Array
  /** Combine weight of each row, 0 for padding. */
  readonly rowWeight: Float32Array
  /** Per-expert capacity the groups were padded to, or null for exact sizes. */
  readonly capacity: number | null
  /** Padding rows computed (and sent) on top of the real ones. */
  readonly paddingRows: number
  /** Pairs the dispatcher itself dropped (static gating overflow). */
  readonly dropped: readonly DroppedPair[]
  /** Device-to-device traffic implied by the plan. */
  readonly traffic: DispatchTraffic
}

/** Token traffic between devices: `sendRows[src*devices + dst]` rows (token replicas) sent. */
export interface DispatchTraffic {
  readonly devices: number
  /** devices × devices rows sent from src to dst (dst ≠ src counts as crossing devices). */
  readonly sendRows: Int32Array
  /** Bytes that cross devices (src ≠ dst), dispatch direction only. */
  readonly bytesCrossDevice: number
}

/** One expert's SwiGLU weights, `nn.Linear` layout. */
export interface ExpertWeights {
  /** w1 / gate_proj: intermediate × hidden. */
  readonly gate: Float32Array
  /** w3 / up_proj: intermediate × hidden. */
  readonly up: Float32Array
  /** w2 / down_proj: hidden × intermediate. */
  readonly down: Float32Array
}

/** All weights of one MoE layer (interface and DI token share the name). */
export interface LayerWeights {
  readonly shape: ModelShape
  /** Router (gate) weight: experts × hidden. */
  readonly router: Float32Array
  /** One entry per expert. */
  readonly experts: readonly ExpertWeights[]
}
/** The layer weights of a container (optional: routing-only embeddings have none). */
export const LayerWeights = defineToken<LayerWeights>('LayerWeights')

/** Where one stage of a batch ran and how long it took. */
export interface StageTiming {
  /** `gate`, `router:<name>`, `policy:<name>`, `dispatch:<name>`, `store:<name>`, `experts`, `combine`, `telemetry`. */
  readonly stage: string
  /** `device`: the plugin's GPU lowering or the backend's kernels; `host`: host code (a round trip on a GPU backend). */
  readonly where: 'device' | 'host'
  /** Milliseconds: kernel time from timestamp queries on the device (null when not profiled), wall clock on the host. */
  readonly ms: number | null
}

/** Timings of one batch, in milliseconds (wall clock unless a backend reports kernel time). */
export interface BatchTimings {
  gateMs: number
  routeMs: number
  policiesMs: number
  dispatchMs: number
  storeMs: number
  expertsMs: number
  totalMs: number
  /** Kernel times reported by the backend (timestamp queries), by kernel name. */
  kernels?: Record<string, number>
  /** Per-stage times of a device pipeline, in pipeline order, with where each stage ran. */
  stages?: StageTiming[]
}

/** Per-policy summary within one batch. */
export interface PolicyTelemetry {
  readonly policy: string
  readonly dropped: number
  readonly rerouted: number
  readonly added: number
  readonly capacity: number | null
  readonly skipped?: string
  /** Set when the policy threw and its configured fallback ran instead. */
  readonly fallback?: { readonly from: string; readonly to: string; readonly error: { readonly code: string; readonly message: string } }
}

/** Pairs one plugin removed for one reason within a batch. */
export interface DropCount {
  readonly policy: string
  readonly reason: DropReason
  readonly pairs: number
}

/** Expert-store counters for one batch. */
export interface StoreTelemetry {
  readonly hits: number
  readonly misses: number
  readonly evictions: number
  readonly bytesUploaded: number
  readonly uploadMs: number
  readonly resident: number
  readonly bypassed: boolean
  readonly prefetchHits?: number
  readonly prefetchWastedBytes?: number
}

/** What one batch did: load, drops, balance, cache and timings. */
export interface BatchTelemetry {
  readonly batchId: number
  readonly tokens: number
  /** Pairs chosen by the router (tokens·k). */
  readonly pairsBefore: number
  /** Pairs computed after policies and dispatch. */
  readonly pairsAfter: number
  readonly loadBefore: readonly number[]
  readonly loadAfter: readonly number[]
  /** max/mean expert load before and after (mean over all experts). */
  readonly maxMeanBefore: number
  readonly maxMeanAfter: number
  /** Router pairs that were dropped (not computed). */
  readonly droppedPairs: number
  /** SPEC Eq. 11: dropped router pairs ÷ router pairs. */
  readonly droppedFraction: number
  readonly reroutedPairs: number
  /** Pairs added beyond the router's choice (expanded drop, reroute targets). */
  readonly addedPairs: number
  /** Σ final weight of the router's original pairs ÷ Σ original weight. */
  readonly gateMassKept: number
  /** Tokens with every pair dropped (their MoE output is 0). */
  readonly tokensFullyDropped: number
  readonly policies: readonly PolicyTelemetry[]
  /**
   * Pairs removed in this batch, counted by the plugin that removed them (a policy, or the
   * dispatcher for static-gating overflow) and the reason it gave, in first-seen order. Counts
   * every removal, so a pair a policy added and a later one dropped is counted although it is
   * not a router pair ({@link droppedPairs} counts router pairs only).
   */
  readonly droppedBy?: readonly DropCount[]
  /** What the dispatcher did with the routed pairs of this batch. */
  readonly dispatch: {
    /** The plan's mode (`exact`, `dynamic`, `static`, …). */
    readonly mode: string
    /** Rows the experts computed: real rows plus padding. */
    readonly slotsComputed: number
    /** Placeholder rows computed on top of the real ones (static capacity). */
    readonly paddingRows: number
    /** Payload bytes between distinct devices (dispatch direction). */
    readonly bytesCrossDevice: number
    /** Rows per expert group (static), or null for exact sizes. */
    readonly capacity: number | null
    /** Pairs the dispatcher itself dropped (capacity overflow); absent where the backend does not count them. */
    readonly droppedPairs?: number
  }
  /** Per-device load after policies (rows per device, primary replica), when devices > 1. */
  readonly deviceLoad?: readonly number[]
  readonly store?: StoreTelemetry
  readonly backend?: string
  /** Set when the batch was finished on a fallback backend (device lost, out of memory). */
  readonly fallback?: { readonly from: string; readonly to: string; readonly reason: string }
  /**
   * Times the routing went from a GPU backend to the host and back in this batch, by the
   * plugin that needed it (a stage without a GPU lowering); absent on host backends.
   */
  readonly hostRoundTrips?: Readonly<Record<string, number>>
  readonly timings: BatchTimings
}

/**
 * Activations that live on a backend's device (a `GPUBuffer` of f32 on the WebGPU backend):
 * what an embedder passes to keep a layer's input on the GPU, and what a layer returns when
 * the output should stay there. `release()` gives the memory back to the backend.
 */
export interface DeviceTensor {
  /** Name of the backend that owns it. */
  readonly backend: string
  /** The device object (a `GPUBuffer` for `webgpu`). */
  readonly buffer: unknown
  /** Rows × columns of f32, row-major, starting at byte 0. */
  readonly rows: number
  readonly columns: number
  release(): void
}

/** Where the layer output of {@link MoeEngine.forward} goes. */
export type OutputMode = 'host' | 'device' | 'norm'

/** Options of one forward call. */
export interface ForwardOptions {
  /**
   * `host` (default): `output` as a Float32Array. `device`: left on the device as
   * `deviceOutput` (call its `release()`), only its L2 norm on the host. `norm`: only the
   * output's L2 norm comes back (`outputNorm`), nothing else is read.
   */
  readonly output?: OutputMode
  /**
   * `full` (default): the final routing, the plan and every dropped and moved pair come
   * back. `telemetry`: only the batch's telemetry (a device pipeline then reads back a few
   * hundred bytes per batch).
   */
  readonly detail?: 'full' | 'telemetry'
}

/** What every forward call returns: telemetry and the output where it was asked for. */
export interface LayerSummary {
  readonly batchId: number
  readonly tokens: number
  /** tokens × hidden layer output, when the batch carried hidden states and `output` was `host`. */
  readonly output?: Float32Array
  /** L2 norm of the layer output (every output mode). */
  readonly outputNorm?: number
  /** The output left on the device (`output: 'device'`); release it when done. */
  readonly deviceOutput?: DeviceTensor
  readonly telemetry: BatchTelemetry
}

/** The result of one batch through the layer. */
export interface LayerResult extends LayerSummary {
  /** Final routing after policies. */
  readonly routing: Routing
  readonly plan: DispatchPlan
  readonly dropped: readonly DroppedPair[]
  readonly rerouted: readonly ReroutedPair[]
}
