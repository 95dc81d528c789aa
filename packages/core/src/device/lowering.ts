/**
 * GPU lowerings: a plugin's device implementation next to its host one.
 *
 * A router, policy or dispatcher instance may implement `lower(context)` and return a stage
 * the device pipeline of a GPU backend runs instead of calling the host hook: a WGSL program
 * over the routing buffers (routers and policies) or a grouping descriptor (dispatchers). A
 * lowering must make exactly the decisions of the host implementation: the same kept,
 * dropped and moved pairs and the same weights within 1e-6 (check it with
 * `@moe-route/testkit`'s `checkLowering`). An instance without `lower` still runs on a GPU
 * backend: the routing comes back to the host once, its host hook runs, the result goes back
 * once, and telemetry counts that round trip (`hostRoundTrips`).
 *
 * This module is backend-agnostic: it holds the contract and the WGSL prelude every policy
 * and router stage is compiled with (bindings and helpers), so a plugin package needs no
 * dependency on a backend to ship its lowering.
 */
import type { PlacementMap } from '../placement/placement.js'
import type { ModelShape } from '../types.js'

/** Facts a lowering is built from (once per pipeline, never per batch). */
export interface LoweringContext {
  readonly model: ModelShape
  /** Devices under expert parallelism (the placement's). */
  readonly devices: number
  readonly placement: PlacementMap
  /** Slots per token of the routing the stage reads (routers: 0). */
  readonly slotsIn: number
  /** Whether the device has subgroup operations. */
  readonly subgroups: boolean
  /** Subgroup size when the device fixes one, else null. */
  readonly subgroupSize: number | null
  /** Largest number of invocations in one workgroup. */
  readonly maxWorkgroupSize: number
}

/** Per-batch facts a stage's grid and parameters may depend on. */
export interface StageBatch {
  readonly tokens: number
  readonly batchId: number
  /** True for decode batches (one token per sequence). */
  readonly decode: boolean
  /** Tokens per source device (index = device) when the batch has source devices, else null. */
  readonly sourceTokens: readonly number[] | null
  /**
   * Seed of this stage's random stream for this batch: the host's `PolicyContext.random` is
   * `mulberry32(seed)`, so draw n of the host is `mulberry32At(seed, n)` in WGSL.
   */
  readonly seed: number
}

/** One compute dispatch of a stage. */
export interface WgslPass {
  /** Entry point in the stage's code (`@compute` function). */
  readonly entryPoint: string
  /** `@workgroup_size` of the entry point (x only). */
  readonly workgroupSize: number
  /** Workgroups to launch for a batch (spread over x and y by the backend when large; use `workgroupIndex()`). */
  workgroups(batch: StageBatch): number
  /** Runs only for batches where this is true (variants of one stage, e.g. by batch size). */
  when?(batch: StageBatch): boolean
}

/** A router or policy lowered to WGSL (see {@link POLICY_PRELUDE} and {@link ROUTER_PRELUDE}). */
export interface WgslStage {
  readonly kind: 'wgsl'
  /**
   * Identifies the compiled code among every stage on a device: name plus every
   * init-time option the code depends on (never a per-batch value).
   */
  readonly key: string
  /** WGSL placed after the prelude: helper functions and the entry points of `passes`. */
  readonly code: string
  /** WGSL extensions the code needs (`subgroups`: only lower to it where `LoweringContext.subgroups`). */
  readonly enable?: readonly 'subgroups'[]
  /** Dispatches in order; the backend inserts the storage barriers between them. */
  readonly passes: readonly WgslPass[]
  /** Slots per token of the routing the stage writes (default: `slotsIn`; routers: topK). */
  readonly slotsOut?: number
  /** u32 words of `scratch` the stage needs (zeroed before the stage runs). */
  scratchWords?(batch: StageBatch): number
  /** u32 words of `counters` beyond the 8 statistics the stage needs (zeroed before it runs). */
  counterWords?(batch: StageBatch): number
  /** Up to 16 u32 words of per-batch parameters (`param(i)`, `paramF(i)` in WGSL; see {@link f32Bits}). */
  params?(batch: StageBatch): readonly number[]
  /** Constant u32 data the stage reads through `table(i)` (collaborator lists, thresholds). */
  readonly table?: Uint32Array
  /** Reason reported for the pairs the stage drops (default `capacity`). */
  readonly dropReason?: string
  /**
   * Further reasons, for a stage that drops pairs for more than one reason. Such a stage
   * writes, for every input slot (token t, slot j), the reason of that pair if it removes it
   * into `scratch[t * slotsIn + j]`: 0 for `dropReason`, i for `dropReasons[i - 1]` (so the
   * first `tokens × slotsIn` scratch words are the reasons; they are read back only for a
   * batch's full detail).
   */
  readonly dropReasons?: readonly string[]
  /** Why the stage left a batch alone when it sets `STAT_SKIPPED` (shown in telemetry). */
  readonly skippedReason?: string
  /**
   * How the full detail of a batch tells moved pairs from dropped ones (the stage's own
   * STAT_REROUTED / STAT_DROPPED counts are what telemetry reports either way):
   * - `true` (reroute): a removed pair whose weight reappears on an added expert of the same
   *   token was moved there;
   * - `'by-score'` (substitution, e.g. device-limited pruning): a token's removed experts and
   *   its added experts, each ordered by router score descending then expert ascending, are
   *   paired in order (the i-th removed moved to the i-th added); removed ones beyond the
   *   added ones were dropped;
   * - `false` (default): every removed pair was dropped.
   */
  readonly moves?: boolean | 'by-score'
}

/** A dispatcher lowered to the backend's grouping kernels (grouping by expert lives once). */
export interface GroupingStage {
  readonly kind: 'grouping'
  readonly key: string
  /** `exact`: groups of exact size; `padded`: every expert padded to `capacity(batch)` rows, overflow dropped in token order. */
  readonly padding: 'exact' | 'padded'
  /**
   * Rows per expert (per source segment) when `padded`, for a batch whose busiest source
   * device holds `busiestSourceTokens` tokens (all of them without source devices).
   */
  capacity?(batch: StageBatch, busiestSourceTokens: number): number
  /** `per-source-device`: one padded segment per source device (static gating under EP); default one. */
  readonly segments?: 'none' | 'per-source-device'
  /** Fill order of padded groups: `token` (default: token then slot) or `choice` (every first choice before any second). */
  readonly priority?: 'token' | 'choice'
  /** Mode reported in the plan (`dynamic`, `static`). */
  readonly mode: string
  /** Reason of the pairs a padded grouping drops (default `static-overflow`). */
  readonly dropReason?: string
  /**
   * Rows that cross devices, as reported in telemetry (`bytesCrossDevice`):
   * `per-device` (default, core's `tokenTraffic`): one copy of a token per distinct
   * destination device; `per-pair`: one row per (token, expert) pair whose computing replica
   * (`t mod replicas`) is not the token's source device; `padded-slots`: every padded slot of
   * every segment goes to the expert's primary device (static gating's fixed-size all-to-all).
   */
  readonly traffic?: 'per-device' | 'per-pair' | 'padded-slots'
}

/** What `lower()` returns. */
export type DeviceStage = WgslStage | GroupingStage

/** Implemented by router, policy and dispatcher instances that have a device implementation. */
export interface Lowerable {
  /** The stage for these options on this device, or null when this configuration has none (host round trip). */
  lower?(context: LoweringContext): DeviceStage | null
}

/** Indices of the per-stage statistics (`stat(STAT_DROPPED, n)` in WGSL). */
export const StageStats = {
  /** Pairs of the input the stage removed. */
  DROPPED: 0,
  /** Pairs moved to another expert. */
  REROUTED: 1,
  /** Pairs added that were not in the input. */
  ADDED: 2,
  /** Per-expert capacity applied (max over the batch's groups); 0 = none. */
  CAPACITY: 3,
  /** Non-zero when the stage left the batch alone. */
  SKIPPED: 4,
  /** Non-zero when the stage set a capacity (distinguishes capacity 0 from none). */
  HAS_CAPACITY: 5,
} as const

/** Words of statistics per stage in the `counters` buffer. */
export const STAGE_STAT_WORDS = 8

/** The bits of an f32 as a u32 (for stage parameters read with `paramF`). */
export function f32Bits(x: number): number {
  const f = new Float32Array(1)
  f[0] = x
  return new Uint32Array(f.buffer)[0]
}

/**
 * Draw `n` (0-based) of `mulberry32(seed)` as the raw u32 the host divides by 2^32: draws
 * compare in the same order as the host's floats.
 */
export function mulberry32At(seed: number, n: number): number {
  let t = (seed + Math.imul(n + 1, 0x6d2b79f5)) >>> 0
  t = Math.imul(t ^ (t >>> 15), t | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  return (t ^ (t >>> 14)) >>> 0
}

/** Uniform block every stage sees as `dims`. */
const DIMS = /* wgsl */ `
struct Dims {
  tokens: u32, experts: u32, topK: u32, slotsIn: u32,
  slotsOut: u32, devices: u32, decode: u32, normalizeTopK: u32,
  batchId: u32, seed: u32, statBase: u32, counterBase: u32,
  tableBase: u32, srcBase: u32, inputScores: u32, _pad: u32,
};
struct StageParams { w: array<vec4<u32>, 4> };`

/** Helpers shared by both preludes. */
const HELPERS = /* wgsl */ `
const STAT_DROPPED = 0u;
const STAT_REROUTED = 1u;
const STAT_ADDED = 2u;
const STAT_CAPACITY = 3u;
const STAT_SKIPPED = 4u;
const STAT_HAS_CAPACITY = 5u;
var<private> gWorkgroup: u32;
var<private> gLocal: u32;
// Linear workgroup index (grids over 32768 workgroups spread over y) and local index.
fn workgroupIndex() -> u32 { return gWorkgroup; }
fn localIndex() -> u32 { return gLocal; }
fn param(i: u32) -> u32 { return params.w[i / 4u][i % 4u]; }
fn paramF(i: u32) -> f32 { return bitcast<f32>(param(i)); }
fn table(i: u32) -> u32 { return aux[dims.tableBase + i]; }
// Source device of token t (0 when the batch has none).
fn srcDevice(t: u32) -> u32 { return aux[dims.srcBase + t]; }
// Replicas of expert e under the placement: count, and device i (0 = primary).
fn replicaCount(e: u32) -> u32 { return aux[e + 1u] - aux[e]; }
fn replicaDevice(e: u32, i: u32) -> u32 { return aux[aux[e] + i]; }
// Device that computes pair (t, e): the replica chosen round-robin by token (as core's tokenTraffic).
fn pairDevice(t: u32, e: u32) -> u32 { return replicaDevice(e, t % replicaCount(e)); }
fn stat(which: u32, n: u32) { atomicAdd(&counters[dims.statBase + which], n); }
fn statMax(which: u32, v: u32) { atomicMax(&counters[dims.statBase + which], v); }
// The stage's own zeroed atomic words.
fn counterAdd(i: u32, n: u32) -> u32 { return atomicAdd(&counters[dims.counterBase + i], n); }
fn counterLoad(i: u32) -> u32 { return atomicLoad(&counters[dims.counterBase + i]); }
fn counterMax(i: u32, v: u32) { atomicMax(&counters[dims.counterBase + i], v); }
fn score(t: u32, e: u32) -> f32 { return scores[t * dims.experts + e]; }
// Draw n (0-based) of the host's mulberry32(seed), as the raw u32 (host float = raw / 2^32).
fn mulberry32At(seed: u32, n: u32) -> u32 {
  var t = seed + (n + 1u) * 0x6D2B79F5u;
  t = (t ^ (t >> 15u)) * (t | 1u);
  t = t ^ (t + (t ^ (t >> 7u)) * (t | 61u));
  return t ^ (t >> 14u);
}
// Slot order of a routing (as core's routingFromPairs): weight descending, then expert
// ascending, empty slots (-1) last. Sorts the slotsOut slots of token t in place.
fn canonicalizeToken(t: u32) {
  let S = dims.slotsOut;
  let o = t * S;
  for (var i = 1u; i < S; i = i + 1u) {
    let e = idsOut[o + i];
    let w = wOut[o + i];
    var j = i;
    loop {
      if (j == 0u) { break; }
      let pe = idsOut[o + j - 1u];
      let pw = wOut[o + j - 1u];
      let before = e >= 0 && (pe < 0 || w > pw || (w == pw && e < pe));
      if (!before) { break; }
      idsOut[o + j] = pe;
      wOut[o + j] = pw;
      j = j - 1u;
    }
    idsOut[o + j] = e;
    wOut[o + j] = w;
  }
}`

/**
 * The WGSL every policy stage is compiled with, before its `code`. Bindings (group 0):
 * `idsIn`/`wIn` (tokens × slotsIn expert ids, -1 = empty, and weights, in canonical slot
 * order), `scores` (tokens × experts gate probabilities), `aux` (placement, the stage's
 * `table`, source devices), `idsOut`/`wOut` (tokens × slotsOut: the stage writes EVERY slot
 * of every token, -1 and 0 for empty ones; any slot order is fine if the stage calls
 * `canonicalizeToken(t)` after writing token t),
 * `scratch` (zeroed u32 words), `counters` (atomic statistics and zeroed atomic words),
 * `dims` and `params`. Entry points call `stageBegin(wid, nwg, lid)` first.
 */
export const POLICY_PRELUDE = /* wgsl */ `${DIMS}
@group(0) @binding(0) var<storage, read> idsIn: array<i32>;
@group(0) @binding(1) var<storage, read> wIn: array<f32>;
@group(0) @binding(2) var<storage, read> scores: array<f32>;
@group(0) @binding(3) var<storage, read> aux: array<u32>;
@group(0) @binding(4) var<storage, read_write> idsOut: array<i32>;
@group(0) @binding(5) var<storage, read_write> wOut: array<f32>;
@group(0) @binding(6) var<storage, read_write> scratch: array<u32>;
@group(0) @binding(7) var<storage, read_write> counters: array<atomic<u32>>;
@group(0) @binding(8) var<uniform> dims: Dims;
@group(0) @binding(9) var<uniform> params: StageParams;
${HELPERS}
fn stageBegin(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) { gWorkgroup = wid.y * nwg.x + wid.x; gLocal = lid; }
fn idIn(t: u32, j: u32) -> i32 { return idsIn[t * dims.slotsIn + j]; }
fn weightIn(t: u32, j: u32) -> f32 { return wIn[t * dims.slotsIn + j]; }
// Pairs of token t in the input (its non-empty slots come first).
fn pairsIn(t: u32) -> u32 {
  var n = 0u;
  for (var j = 0u; j < dims.slotsIn; j = j + 1u) { if (idsIn[t * dims.slotsIn + j] >= 0) { n = n + 1u; } }
  return n;
}
`

/**
 * The WGSL every router stage is compiled with. Bindings: `gateIn` (tokens × experts logits,
 * or probabilities when `dims.inputScores` is 1), `aux`, `scores` (written: tokens × experts
 * gate probabilities), `idsOut`/`wOut` (tokens × slotsOut), `scratch`, `counters`, `dims`,
 * `params`; helpers `softmaxRow(t, E)` (token t's gate probabilities into `scores`) and
 * `renormalizeSlots(t, k, sum)` (renormalised top-k weights).
 */
export const ROUTER_PRELUDE = /* wgsl */ `${DIMS}
@group(0) @binding(0) var<storage, read> gateIn: array<f32>;
@group(0) @binding(1) var<storage, read> aux: array<u32>;
@group(0) @binding(2) var<storage, read_write> scores: array<f32>;
@group(0) @binding(3) var<storage, read_write> idsOut: array<i32>;
@group(0) @binding(4) var<storage, read_write> wOut: array<f32>;
@group(0) @binding(5) var<storage, read_write> scratch: array<u32>;
@group(0) @binding(6) var<storage, read_write> counters: array<atomic<u32>>;
@group(0) @binding(7) var<uniform> dims: Dims;
@group(0) @binding(8) var<uniform> params: StageParams;
${HELPERS}
fn stageBegin(wid: vec3<u32>, nwg: vec3<u32>, lid: u32) { gWorkgroup = wid.y * nwg.x + wid.x; gLocal = lid; }
// Gate probabilities of token t into scores[t, :]: the max-subtracted softmax of its logits
// (f32), or a copy when gateIn already holds probabilities (dims.inputScores == 1).
fn softmaxRow(t: u32, E: u32) {
  let o = t * E;
  if (dims.inputScores == 1u) {
    for (var e = 0u; e < E; e = e + 1u) { scores[o + e] = gateIn[o + e]; }
    return;
  }
  var m = gateIn[o];
  for (var e = 1u; e < E; e = e + 1u) { m = max(m, gateIn[o + e]); }
  var sum = 0.0;
  for (var e = 0u; e < E; e = e + 1u) { sum = sum + exp(gateIn[o + e] - m); }
  let inv = 1.0 / sum;
  for (var e = 0u; e < E; e = e + 1u) { scores[o + e] = exp(gateIn[o + e] - m) * inv; }
}
// Renormalised top-k weights: each of token t's k slots gets its share of sum (the slots'
// weight total), 1/k each when the sum is 0 (core's rule for normalizeTopK).
fn renormalizeSlots(t: u32, k: u32, sum: f32) {
  for (var j = 0u; j < k; j = j + 1u) {
    wOut[t * k + j] = select(1.0 / f32(k), wOut[t * k + j] / sum, sum > 0.0);
  }
}
`

/**
 * WGSL of a 256-invocation workgroup's exclusive prefix sum, `fn exclusiveScan(v, lid) ->
 * vec2<u32>` (the caller's exclusive prefix and the workgroup total), over `var<workgroup>
 * scanBuf`. Barriers inside: call it in uniform control flow with `@workgroup_size(256)`.
 * Shared by the plugins' stages and the backend's grouping kernels.
 */
export const WORKGROUP_SCAN_WGSL = /* wgsl */ `
var<workgroup> scanBuf: array<u32, 256>;
fn exclusiveScan(v: u32, lid: u32) -> vec2<u32> {
  scanBuf[lid] = v;
  workgroupBarrier();
  for (var s = 1u; s < 256u; s = s << 1u) {
    let add = select(0u, scanBuf[max(lid, s) - s], lid >= s);
    workgroupBarrier();
    scanBuf[lid] = scanBuf[lid] + add;
    workgroupBarrier();
  }
  let incl = scanBuf[lid];
  let total = scanBuf[255];
  workgroupBarrier();
  return vec2<u32>(incl - v, total);
}`

/** Words of the `dims` uniform, in order (the backend fills them). */
export const DIMS_FIELDS = [
  'tokens', 'experts', 'topK', 'slotsIn', 'slotsOut', 'devices', 'decode', 'normalizeTopK',
  'batchId', 'seed', 'statBase', 'counterBase', 'tableBase', 'srcBase', 'inputScores', '_pad',
] as const

/** True if a value looks like a device stage (for plugins loaded from anywhere). */
export function isDeviceStage(value: unknown): value is DeviceStage {
  if (typeof value !== 'object' || value === null) return false
  const kind = (value as { kind?: unknown }).kind
  return kind === 'wgsl' || kind === 'grouping'
}
