/** Program descriptors of the grouping and telemetry kernels (see grouping.wgsl.ts). */
import { grid1d, uniforms, type KernelProgram } from '../gpu/program.js'
import type { OffsetsParams } from '../kernels/dispatch/dispatch.program.js'
import { GROUP_FUSED_PAIRS, groupCountWgsl, groupFusedWgsl, groupScatterWgsl, groupSelectWgsl, groupWriteWgsl, TELE_MAX_GROUPS, TELE_PART_WORDS, telemetryPartialsWgsl, telemetryWgsl, telemetryFusedWgsl } from './grouping.wgsl.js'

/** Run parameters of the group-select kernel. */
export interface GroupSelectParams {
  readonly tokens: number
  readonly slots: number
  readonly experts: number
  readonly padded: boolean
  /** Rows per segment when padded. */
  readonly cap: number
  /** Source segments (1, or the devices when padding per source device). */
  readonly segments: number
  /** Slot-major priority (all first choices before any second choice). */
  readonly choice: boolean
  readonly srcBase: number
  /** Positions per expert in `kept`: tokens·slots (exact) or segments·cap (padded). */
  readonly width: number
  /** Word of the dispatcher's STAT_DROPPED in `counters`. */
  readonly statBase: number
}

/** Group-select; bindings: ids (T×S), aux, kept (E×W), counts (E), counters. One workgroup per expert. */
export function groupSelectProgram(): KernelProgram<GroupSelectParams> {
  return {
    name: 'group-select',
    cacheKey: 'group-select',
    getShaderSource: groupSelectWgsl,
    getRunData: (p) => ({
      dispatch: [p.experts, 1, 1],
      uniforms: uniforms([p.tokens, p.slots, p.experts, p.padded ? 1 : 0, p.cap, p.segments, p.choice ? 1 : 0, p.srcBase, p.width, p.statBase]),
    }),
  }
}

/** Pairs each invocation of the chunked group-select takes at least (a chunk is 256 times that). */
export const GROUP_SELECT_PER = 8

/** Most chunks per expert: the second pass scans an expert's chunk counts in one workgroup. */
const GROUP_SELECT_MAX_CHUNKS = 256

/**
 * How group-select splits `pairs` (T·S) positions: `chunks` C of 256·`per` positions each
 * (per ≥ {@link GROUP_SELECT_PER}, grown so that C ≤ 256), or null for the single-pass kernel,
 * which is one dispatch and wins while the batch is one chunk (decode batches). `per`
 * overrides the pairs per invocation (tests use small chunks on small batches).
 */
export function groupSelectChunking(pairs: number, per?: number): { chunks: number; per: number } | null {
  if (per === undefined && pairs <= 256 * GROUP_SELECT_PER) return null
  let n = Math.max(1, Math.floor(per ?? GROUP_SELECT_PER))
  n = Math.max(n, Math.ceil(pairs / (256 * GROUP_SELECT_MAX_CHUNKS)))
  return { chunks: Math.max(1, Math.ceil(pairs / (256 * n))), per: n }
}

/** Params of the chunked passes: group-select's, then chunks and pairs per invocation. */
function chunkedUniforms(p: GroupSelectParams, c: { chunks: number; per: number }): Uint32Array {
  const segments = p.padded ? p.segments : 1
  return uniforms([p.tokens, p.slots, p.experts, p.padded ? 1 : 0, p.cap, segments, p.choice ? 1 : 0, p.srcBase, p.width, p.statBase, c.chunks, c.per])
}

/** Chunking of a chunked group-select run (throws if `p` takes the single-pass kernel). */
function chunkingOf(p: GroupSelectParams & { readonly per?: number }): { chunks: number; per: number } {
  const c = groupSelectChunking(p.tokens * p.slots, p.per)
  if (!c) throw new RangeError(`group-select: ${p.tokens * p.slots} pairs take the single-pass kernel (groupSelectChunking returned null)`)
  return c
}

/**
 * Words of the chunked group-select's scratch (per expert, segment and chunk: the chunk's
 * matches), or 0 when `p` takes the single-pass kernel.
 */
export function groupSelectScratchWords(p: GroupSelectParams & { readonly per?: number }): number {
  const c = groupSelectChunking(p.tokens * p.slots, p.per)
  return c ? p.experts * (p.padded ? p.segments : 1) * c.chunks : 0
}

/** A chunked group-select pass: one workgroup per (expert, chunk), the chunked params. */
function chunkedGroupProgram(name: string, getShaderSource: () => string): KernelProgram<GroupSelectParams & { readonly per?: number }> {
  return {
    name,
    cacheKey: name,
    getShaderSource,
    getRunData: (p) => {
      const c = chunkingOf(p)
      return { dispatch: grid1d(p.experts * c.chunks), uniforms: chunkedUniforms(p, c) }
    },
  }
}

/**
 * Chunked group-select, first pass (matches per expert, chunk and segment); bindings: ids,
 * aux, scratch ({@link groupSelectScratchWords}). One workgroup per (expert, chunk).
 */
export const groupCountProgram = (): KernelProgram<GroupSelectParams & { readonly per?: number }> => chunkedGroupProgram('group-count', groupCountWgsl)

/**
 * Chunked group-select, second pass (places each chunk's matches at its global rank, writes
 * counts, overflow and padding); bindings: ids, aux, scratch, kept, counts, counters. The
 * two passes write what {@link groupSelectProgram} writes, bit for bit.
 */
export const groupWriteProgram = (): KernelProgram<GroupSelectParams & { readonly per?: number }> => chunkedGroupProgram('group-write', groupWriteWgsl)

/** Run parameters of the group-scatter kernel. */
export interface GroupScatterParams {
  readonly slots: number
  readonly experts: number
  readonly width: number
}

/** Group-scatter; bindings: w (T×S), offsets, kept, rowToken, rowWeight, tokenRows (T×S). */
export function groupScatterProgram(): KernelProgram<GroupScatterParams> {
  return {
    name: 'group-scatter',
    cacheKey: 'group-scatter',
    getShaderSource: groupScatterWgsl,
    getRunData: ({ slots, experts, width }) => ({ dispatch: grid1d((experts * width) / 256), uniforms: uniforms([slots, experts, width]) }),
  }
}

/**
 * Most (token, slot) pairs the fused grouping kernel (`group-fused`) can take: 4
 * per invocation of its one workgroup. The bound of the pipeline option `groupFusedMaxPairs`.
 */
export const GROUP_FUSED_MAX_PAIRS = GROUP_FUSED_PAIRS

/**
 * Most (token, slot) pairs for which the device pipeline groups a batch with the fused kernel
 * (one dispatch) instead of group-select, the offsets kernel, a clear and group-scatter, by
 * default. Measured on an H100 (bench/results/multirow-wr-h100/fused/, kernel timestamps, each
 * kernel in its own pass): the fused kernel took 16–20 µs at 2–64 pairs and 27 µs at 256 (OLMoE
 * T = 32) against ~30 µs for the three separate kernels; each invocation's rank walk grows with
 * the pairs, so past 256 the separate kernels keep the batch. The pipeline option
 * `groupFusedMaxPairs` moves it (up to {@link GROUP_FUSED_MAX_PAIRS}).
 */
export const GROUP_FUSED_DEFAULT_PAIRS = 256

/**
 * Most rows (E × segments × cap) of padded groups the fused kernel writes: its one workgroup
 * fills every padding row (64 per invocation at this bound), which the scatter kernel spreads
 * over E·W / 256 workgroups.
 */
export const GROUP_FUSED_MAX_ROWS = 16384

/** Storage buffers the fused kernel binds (above WebGPU's default 8: devices with fewer keep the separate kernels). */
export const GROUP_FUSED_STORAGE_BUFFERS = 10

/** Run parameters of the fused grouping kernel: group-select's and the offsets kernel's GEMM grid. */
export type GroupFusedParams = GroupSelectParams & Pick<OffsetsParams, 'colsGateUp' | 'colsDown' | 'bm' | 'bn' | 'bnDown'>

/**
 * Whether a batch takes the fused grouping kernel: 1 ≤ T·S ≤ `maxPairs` (default
 * {@link GROUP_FUSED_DEFAULT_PAIRS}, at most {@link GROUP_FUSED_MAX_PAIRS}), E ≤ 256, padded rows ≤ {@link GROUP_FUSED_MAX_ROWS}, at
 * most 65,536 segments, and a device that binds {@link GROUP_FUSED_STORAGE_BUFFERS} storage
 * buffers per stage. T = 0 keeps the separate kernels.
 */
export function groupFusedApplies(p: Pick<GroupSelectParams, 'tokens' | 'slots' | 'experts' | 'padded' | 'width' | 'segments'>, limits: Pick<GPUSupportedLimits, 'maxStorageBuffersPerShaderStage'>, maxPairs: number = GROUP_FUSED_DEFAULT_PAIRS): boolean {
  const pairs = p.tokens * p.slots
  return (
    pairs >= 1 &&
    pairs <= Math.min(maxPairs, GROUP_FUSED_MAX_PAIRS) &&
    p.experts <= 256 &&
    (!p.padded || (p.experts * p.width <= GROUP_FUSED_MAX_ROWS && p.segments <= 65536)) &&
    limits.maxStorageBuffersPerShaderStage >= GROUP_FUSED_STORAGE_BUFFERS
  )
}

/**
 * Fused grouping of a small batch ({@link groupFusedApplies}); bindings: ids (T×S), aux, w (T×S),
 * counts (E), counters, offsets (3E+1), args (8, INDIRECT), rowToken, rowWeight, tokenRows (T×S).
 * One workgroup. Writes what group-select (or group-count + group-write), the offsets kernel,
 * a clear of tokenRows and group-scatter write, bit for bit (no `kept`).
 */
export function groupFusedProgram(): KernelProgram<GroupFusedParams> {
  return {
    name: 'group-fused',
    cacheKey: 'group-fused',
    getShaderSource: groupFusedWgsl,
    getRunData: (p) => {
      if (p.tokens * p.slots > GROUP_FUSED_PAIRS || p.experts > 256) throw new RangeError(`group-fused: ${p.tokens * p.slots} pairs, E ${p.experts} (at most ${GROUP_FUSED_PAIRS} pairs and 256 experts)`)
      return {
        dispatch: [1, 1, 1],
        uniforms: uniforms([p.tokens, p.slots, p.experts, p.padded ? 1 : 0, p.cap, p.segments, p.choice ? 1 : 0, p.srcBase, p.width, p.statBase, p.colsGateUp, p.colsDown, p.bm, p.bn, p.bnDown ?? p.bn]),
      }
    },
  }
}

/** Workgroups of the output norm's partial sums for `n4` vec4 elements (≤ 256, one per 4096 elements). */
export const normGroups = (n4: number): number => Math.max(1, Math.min(256, Math.ceil(n4 / 4096)))

/**
 * The placement words at the head of the pipeline's aux buffer, as the grouping and telemetry
 * kernels read them: E + 1 absolute offsets (expert e's replica devices are words
 * `aux[e]` … `aux[e + 1]` − 1), then the replica lists.
 */
export function placementWords(replicas: readonly (readonly number[])[]): Uint32Array {
  const E = replicas.length
  const out = new Uint32Array(E + 1 + replicas.reduce((a, x) => a + x.length, 0))
  let o = E + 1
  for (let e = 0; e < E; e++) {
    out[e] = o
    for (const dev of replicas[e]) out[o++] = dev
  }
  out[E] = o
  return out
}

/** Run parameters of the two telemetry kernels. */
export interface TelemetryParams {
  readonly tokens: number
  readonly k: number
  readonly slots: number
  readonly experts: number
  readonly srcBase: number
  readonly teleBase: number
  /** Word in `counters` of the first pass's partials ({@link telemetryPartWords} words). */
  readonly partBase: number
  readonly normBase: number
  readonly normGroups: number
  readonly devices: number
  /** Count crossing rows once per pair instead of once per destination device. */
  readonly perPair?: boolean
}

/** Workgroups of the telemetry first pass: one per 256 pairs of T × max(k, S), at most TELE_MAX_GROUPS. */
export const telemetryGroups = (tokens: number, k: number, slots: number): number =>
  Math.max(1, Math.min(TELE_MAX_GROUPS, Math.ceil((tokens * Math.max(k, slots)) / 256)))

/** Words of the telemetry first pass's partials in `counters`. */
export const telemetryPartWords = (tokens: number, k: number, slots: number): number => TELE_PART_WORDS * telemetryGroups(tokens, k, slots)

/**
 * Telemetry first pass (per-workgroup partials, loads before); bindings: origIds, origW, ids,
 * w, tokenRows, aux, then out (T×H, `n4` vec4 elements) with `norm`, counters. Workgroups:
 * {@link telemetryGroups}, after {@link normGroups}(`n4`) workgroups of the output norm's
 * partial sums (at `normBase`) with `norm`.
 */
export function telemetryPartialsProgram(norm = false): KernelProgram<TelemetryParams & { readonly n4?: number }> {
  return (TELE_PARTIALS[norm ? 1 : 0] ??= telemetryPartials(norm))
}

const TELE_PARTIALS: (KernelProgram<TelemetryParams & { readonly n4?: number }> | undefined)[] = [undefined, undefined]

function telemetryPartials(norm: boolean): KernelProgram<TelemetryParams & { readonly n4?: number }> {
  return {
    name: 'telemetry-partials',
    cacheKey: `telemetry-partials|norm=${norm ? 1 : 0}`,
    getShaderSource: () => telemetryPartialsWgsl(norm),
    getRunData: (p) => {
      const groups = telemetryGroups(p.tokens, p.k, p.slots)
      const ng = norm ? normGroups(p.n4 ?? 0) : 0
      return {
        dispatch: grid1d(ng + groups),
        uniforms: uniforms([p.tokens, p.k, p.slots, p.experts, p.srcBase, p.teleBase, p.partBase, groups, p.devices, p.perPair ? 1 : 0, Math.max(p.k, p.slots), norm ? (p.n4 ?? 0) : 0, p.normBase, ng]),
      }
    },
  }
}

/** Telemetry second pass (sums the partials, writes the telemetry block); bindings: counts, counters. One workgroup. */
export function telemetryProgram(): KernelProgram<TelemetryParams> {
  return {
    name: 'telemetry',
    cacheKey: 'telemetry',
    getShaderSource: telemetryWgsl,
    getRunData: (p) => ({
      dispatch: [1, 1, 1],
      uniforms: uniforms([p.tokens, p.experts, p.teleBase, p.partBase, telemetryGroups(p.tokens, p.k, p.slots), p.normBase, p.normGroups]),
    }),
  }
}

/** Experts the fused telemetry kernel takes at most (its loads before stay in workgroup counters). */
export const TELE_FUSED_MAX_EXPERTS = 256

/** Storage buffers the fused telemetry kernel binds with the output norm (without: 8, WebGPU's default limit). */
export const TELE_FUSED_NORM_STORAGE_BUFFERS = 9

/**
 * Output-norm workgroups the fused telemetry kernel runs one after the other (≤ 2 · 4096 vec4
 * of output: Mixtral-8x7B T = 8). Measured on an H100 (bench/results/prefetch-h100/telemetry/,
 * GPU ms, the fused kernel against the three): two groups 0.022 vs 0.038 ms (Mixtral T = 8);
 * four 0.032 vs 0.041 but the layer's wall no better (OLMoE T = 32); eight 0.048 vs 0.038
 * (Mixtral T = 32) — one workgroup reads the output at a small fraction of the bandwidth.
 */
export const TELE_FUSED_MAX_NORM_GROUPS = 2

/**
 * Whether a batch's telemetry runs as the one-workgroup fused kernel
 * ({@link telemetryFusedProgram}) instead of the two passes (telemetry-partials with the
 * output norm's partials, then telemetry): the pair partials would take one workgroup, the norm
 * at most {@link TELE_FUSED_MAX_NORM_GROUPS} (`n4` = 0: no output, no norm), E ≤
 * {@link TELE_FUSED_MAX_EXPERTS}, and with an output the device binds
 * {@link TELE_FUSED_NORM_STORAGE_BUFFERS} storage buffers (`maxStorageBuffers`, the device's
 * `maxStorageBuffersPerShaderStage`). Decode batches: one dispatch instead of two.
 */
export function fusedTelemetry(p: Pick<TelemetryParams, 'tokens' | 'k' | 'slots' | 'experts'> & { readonly n4: number }, maxStorageBuffers: number): boolean {
  if (telemetryGroups(p.tokens, p.k, p.slots) !== 1 || p.experts > TELE_FUSED_MAX_EXPERTS) return false
  return p.n4 === 0 || (normGroups(p.n4) <= TELE_FUSED_MAX_NORM_GROUPS && maxStorageBuffers >= TELE_FUSED_NORM_STORAGE_BUFFERS)
}

/**
 * The telemetry kernels fused into one workgroup (use only where {@link fusedTelemetry}
 * holds): the same telemetry block, bit for bit; `partBase` and `normBase` are not used (no
 * partials are written) and the norm's groups follow `n4` ({@link normGroups}). Bindings: origIds, origW, ids, w, tokenRows, aux,
 * counts, then out (T×H, `n4` vec4 elements) when `norm`, counters.
 */
export function telemetryFusedProgram(norm: boolean): KernelProgram<TelemetryParams & { readonly n4: number }> {
  // one object per variant: every small batch runs it, and a fresh cache-key string is hashed on each pipeline-cache lookup
  return (TELE_FUSED[norm ? 1 : 0] ??= telemetryFused(norm))
}

const TELE_FUSED: (KernelProgram<TelemetryParams & { readonly n4: number }> | undefined)[] = [undefined, undefined]

function telemetryFused(norm: boolean): KernelProgram<TelemetryParams & { readonly n4: number }> {
  return {
    name: 'telemetry-fused',
    cacheKey: `telemetry-fused|norm=${norm ? 1 : 0}`,
    getShaderSource: () => telemetryFusedWgsl(norm),
    getRunData: (p) => ({
      dispatch: [1, 1, 1],
      uniforms: uniforms([p.tokens, p.k, p.slots, p.experts, p.srcBase, p.teleBase, p.devices, p.perPair ? 1 : 0, Math.max(p.k, p.slots), norm ? p.n4 : 0, norm && p.n4 > 0 ? normGroups(p.n4) : 0]),
    }),
  }
}
