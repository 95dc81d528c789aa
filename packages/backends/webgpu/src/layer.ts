/**
 * The MoE layer's kernels on one device: the gate matmul, the grouped SwiGLU experts and the
 * combine, encoded as kernel dispatches. `experts()` runs any DispatchPlan built on the host;
 * the device pipeline (pipeline/device-pipeline.ts) encodes the whole configured layer —
 * routing, policies and grouping included — around `encodeExperts`.
 */
import { ErrorCodes, MoeError, assertLength, type DispatchPlan, type LayerWeights } from '@moe-route/core'
import type { GpuContext, Recorder } from './gpu/context.js'
import type { KernelProgram } from './gpu/program.js'
import { teamFor, type TeamConsts } from './kernels/common/team.wgsl.js'
import { combineProgram } from './kernels/combine/combine.program.js'
import {
  gemmProgram,
  gemvDownProgram,
  gemvGateUpProgram,
  gemvLayout,
  multiRowPlansForGpu,
  multiRowPlanFor,
  multiRowProgram,
  type GemvDownParams,
  type GemvGateUpParams,
  type MultiRowParams,
  type MultiRowPlan,
  type WeightsDtype,
} from './kernels/expert-ffn/expert-ffn.program.js'
import { gateProgramFor, type GateParams, type GateTilePlan } from './kernels/gate/gate.program.js'
import {
  DEFAULT_INT8_TILES,
  fitSgmTile,
  int8GemmProgram,
  int8GemvLayout,
  int8GemvProgram,
  int8SpareRows,
  sgmSubgroups,
  quantizeRowsProgram,
  quantizeRowsWorkgroup,
  sgmTileDims,
  sgmWorkgroupBytes,
  type Int8GemmConfig,
  type Int8GemmParams,
  type Int8GemvParams,
  type QuantizeRowsParams,
  type Int8TilePlan,
  type Int8Tiles,
  type SgmTile,
} from './kernels/expert-int8/int8.program.js'
import { uploadLayerWeights, type DeviceLayerWeights } from './weights.js'
import { isDeviceInt8Weights, uploadInt8Weights, type DeviceInt8Weights } from './weights-int8.js'

/**
 * Which expert kernels run: decode GEMV (weights streamed once), tiled GEMM, or chosen by
 * group size (`auto`); or `int8`, the W8A8 prefill path (int8 weights per output channel,
 * activations quantized per row on the GPU, int8 GEMMs; see `int8.ts`), which `auto` picks
 * only when the weights given are {@link DeviceInt8Weights}.
 */
export type ExpertKernel = 'auto' | 'gemv' | 'gemm' | 'int8'

/** The expert kernel a call ran. */
export type ExpertKernelUsed = Exclude<ExpertKernel, 'auto'>

/** int8 GEMM variant: `subgroup-matrix` (tensor cores) when the device has it, else `dot4`. */
export type Int8KernelOption = 'auto' | 'dot4' | 'subgroup-matrix'

/** Options of {@link WebGpuMoeLayer}. */
export interface LayerOptions {
  /** Storage of uploaded expert weights (default f32). */
  readonly weightsDtype?: WeightsDtype
  /** Use subgroup reductions where the device has them (default true). */
  readonly subgroups?: boolean
  /** Default expert kernel (default auto). */
  readonly expertKernel?: ExpertKernel
  /**
   * `auto` runs the decode kernels (single- or multi-row) while the largest (host plans) or mean
   * (device plans) group has at most this many rows (default 64), and beyond it wherever the
   * multi-row plan table covers the group (`multiRowPlans`; the H100 table covers every size);
   * else the tiled GEMM.
   */
  readonly gemvMaxRows?: number
  /** Weight rows per workgroup of the decode kernels (default 4; a tuning knob). */
  readonly gemvRows?: number
  /**
   * Workgroup rows of the decode kernels on device-built plans: one per possible non-empty
   * expert (min(E, T·k), default) or one per expert (`all`, the surplus exits at once).
   */
  readonly decodeSlots?: 'active' | 'all'
  /**
   * int8 GEMM of the `int8` expert kernel: `dot4` (portable `dot4I8Packed`), `subgroup-matrix`
   * (`chromium-experimental-subgroup-matrix` tensor cores; on Dawn the device must come from
   * `acquireDevice({ unsafeApis: true })`), or `auto` (default: subgroup-matrix when
   * `ctx.features.subgroupMatrix` and a fixed subgroup size, else dot4).
   */
  readonly int8Kernel?: Int8KernelOption
  /**
   * Tiles of the subgroup-matrix kernels by group size (default {@link DEFAULT_INT8_TILES}:
   * up to 16 rows the staged 16-row tile with two stages, beyond it the staged 64×128 tile,
   * each with storage-fed fallbacks for devices with less workgroup memory); a group larger
   * than every plan's `maxRows` runs the last plan.
   */
  readonly int8Tiles?: readonly Int8TilePlan[]
  /**
   * The int8 expert kernel runs the decode GEMV kernels (weights streamed once with 16-byte
   * loads, dot4I8Packed; needs subgroups) while the typical group has at most this many rows
   * (default 2: from 8 rows the tensor-core GEMM was faster on the H200), else the int8 GEMMs.
   * Both give the same i32 sums.
   */
  readonly int8GemvMaxRows?: number
  /**
   * Multi-row decode kernels of the f32/f16 `gemv` path by typical group size (default
   * the GPU model's measured table (`MULTIROW_PLANS_BY_GPU`) or `DEFAULT_MULTIROW_PLANS`: the
   * multi-row kernels at every group size on the H100's table, in blocks of 32 rows past 32; on
   * CPU adapters such as lavapipe `off`), or `off`: the single-row GEMV kernels up to
   * `gemvMaxRows`, the GEMM beyond.
   */
  readonly multiRowPlans?: readonly MultiRowPlan[] | 'off'
  /**
   * Device-built dynamic groups: launch the expert GEMMs (f16 `gemm`, int8) over the indirect
   * grid the offsets kernel writes (one row tile per tile of the largest group) instead of the
   * default direct grid of {@link gemmGridRows} rows, whose workgroups loop over any further
   * row tiles of their group. Default false: Dawn validates every indirect dispatch on the host,
   * ~0.7 ms per dispatch on an H100 (Dawn `webgpu` 0.6.2/Vulkan, bench/wall-gap-probe.ts,
   * 2026-12-05), which made back-to-back int8 calls at Mixtral T = 32 spend 1.8 ms of host time
   * on 0.99 ms of GPU work.
   */
  readonly indirectGemmGrid?: boolean
  /**
   * Tiles of the gate matmul at large batches (default `DEFAULT_GATE_TILES`: tiled from
   * T·E ≥ 16384), or `off`: the team kernels at every batch size (a tuning knob; the
   * benchmarks sweep it). A tile that does not fit the device is `MOE_ROUTE_ERR_INPUT_INVALID`.
   */
  readonly gateTiles?: readonly GateTilePlan[] | 'off'
}

/**
 * Rows the direct expert-GEMM grid covers for device-built dynamic groups: twice the typical
 * group (`rowsHint`, ceil(T·k/E)), at most the bound on any group (`rowsBound`, T × slots). The
 * GEMMs loop over the row tiles of larger groups, so any group size is computed.
 */
export const gemmGridRows = (rowsBound: number, rowsHint: number): number => Math.min(rowsBound, 2 * Math.max(1, rowsHint))

const nextPow2 = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(1, n)))

/**
 * What the expert kernels read as `offsets`: the E+1 row offsets, the non-empty experts in
 * ascending id (−1 after them; the decode kernels launch per list entry), then the weight slot
 * of each expert (identity, unless `slotOf` maps experts to an expert store's device slots).
 */
export function withActiveList(offsets: Int32Array, experts: number, slotOf?: ArrayLike<number>, active?: readonly number[]): Int32Array {
  const out = new Int32Array(3 * experts + 1).fill(-1)
  out.set(offsets.subarray(0, experts + 1))
  let j = experts + 1
  if (active) for (const e of active) out[j++] = e
  else for (let e = 0; e < experts; e++) if (offsets[e + 1] > offsets[e]) out[j++] = e
  for (let e = 0; e < experts; e++) out[2 * experts + 1 + e] = slotOf ? slotOf[e] : e
  return out
}

const DOT4_CONFIG: Int8GemmConfig = { variant: 'dot4' }

/** Teams (one weight row each) per workgroup of the gate kernel. */
const GATE_TEAMS = 8

/**
 * Weight rows per workgroup of the decode kernels when the option does not fix them: 4 (the
 * tuned decode layout) while the mean group has under one row or the experts are small, 2 once
 * a large-I layer batches rows (twice the workgroups: Mixtral-8x7B on an H100, 2026-12-05,
 * `--gemv-sweep`: T = 8 1.48 vs 1.80 ms, T = 32 3.55 vs 4.72, T = 128 10.0 vs 13.2; 8 or 16 rows
 * per workgroup spill and run 4–15× slower).
 */
export const gemvRowsFor = (meanRowsPerExpert: number, intermediate: number): number => (meanRowsPerExpert >= 1 && intermediate >= 8192 ? 2 : 4)

/** Group rows per block of the decode kernels for a typical group size (blocks loop over larger groups). */
export const gemvBlockRows = (typicalRows: number): number => Math.min(8, nextPow2(typicalRows))

/** Adapter names of CPU WebGPU implementations (see `WebGpuMoeLayer.multiRowPlan`). */
const CPU_ADAPTER = /llvmpipe|lavapipe|swiftshader|software/i

/** Memoized decode expert programs of one shape (see `WebGpuMoeLayer.decodePrograms`): multi-row or single-row GEMV. */
type DecodePrograms = {
  readonly dtype: WeightsDtype
  readonly H: number
  readonly I: number
  readonly rowsHint: number
  /** Weight rows per workgroup of the single-row GEMV programs (not part of the multi-row programs' key). */
  readonly rows: number
} & (
  | { readonly multi: true; readonly gateup: KernelProgram<MultiRowParams>; readonly down: KernelProgram<MultiRowParams> }
  | { readonly multi: false; readonly gateup: KernelProgram<GemvGateUpParams>; readonly down: KernelProgram<GemvDownParams> }
)

/**
 * The entry of a most-recently-used `list` that `match`es, moved to the front; else `make()`'s,
 * put at the front, the least recent dropped past `cap` (the layer's per-shape program memos).
 */
function recentOrMake<T>(list: T[], match: (e: T) => boolean, make: () => T, cap = 8): T {
  for (let j = 0; j < list.length; j++) {
    const e = list[j]
    if (!match(e)) continue
    if (j > 0) {
      list[j] = list[0]
      list[0] = e
    }
    return e
  }
  const e = make()
  list.unshift(e)
  if (list.length > cap) list.pop()
  return e
}

/** Memoized int8 expert programs of one shape (see `WebGpuMoeLayer.int8Programs`). */
interface Int8Programs {
  readonly H: number
  readonly I: number
  readonly rowsHint: number
  readonly cfg: Int8GemmConfig
  readonly quantX: KernelProgram<QuantizeRowsParams>
  readonly quantAct: KernelProgram<QuantizeRowsParams>
  /** The decode GEMV kernels, or null where the GEMMs run. */
  readonly gemvGateUp: KernelProgram<Int8GemvParams> | null
  readonly gemvDown: KernelProgram<Int8GemvParams> | null
  /** The GEMMs, or null where the decode GEMV kernels run. */
  readonly gemmGateUp: KernelProgram<Int8GemmParams> | null
  readonly gemmDown: KernelProgram<Int8GemmParams> | null
}

/** The layer's kernels on one device. Uploaded weights are cached per LayerWeights object (WeakMap). */
export class WebGpuMoeLayer {
  private readonly weightCache = new WeakMap<LayerWeights, Map<WeightsDtype, DeviceLayerWeights>>()
  private readonly int8Cache = new WeakMap<LayerWeights, DeviceInt8Weights>()
  private readonly int8Cfgs = new Map<string, Int8GemmConfig>()
  readonly team: TeamConsts
  readonly dtype: WeightsDtype
  /** Largest 1-D workgroup the device allows (the decode kernels use up to this many invocations). */
  private readonly maxWg: number

  constructor(
    readonly ctx: GpuContext,
    readonly options: LayerOptions = {},
  ) {
    this.team = teamFor(ctx.features, GATE_TEAMS, options.subgroups !== false)
    this.dtype = options.weightsDtype ?? 'f32'
    const L = ctx.device.limits
    this.maxWg = Math.min(1024, L.maxComputeInvocationsPerWorkgroup, L.maxComputeWorkgroupSizeX)
  }

  /**
   * Device weights for `weights`: uploaded on first use and cached per LayerWeights object and
   * dtype (repeated batches never re-upload). Device weights pass through unchanged.
   */
  deviceWeights(weights: LayerWeights | DeviceLayerWeights, dtype: WeightsDtype = this.dtype): DeviceLayerWeights {
    if (isDeviceInt8Weights(weights)) throw new MoeError(ErrorCodes.INPUT_INVALID, "int8 device weights run only with expertKernel 'int8' (or 'auto')", { plugin: 'webgpu' })
    if ('gate' in weights && !('experts' in weights)) {
      if (weights.device !== this.ctx.device) throw new MoeError(ErrorCodes.INPUT_INVALID, 'device weights belong to another GPUDevice', { plugin: 'webgpu' })
      return weights
    }
    const host = weights as LayerWeights
    let byDtype = this.weightCache.get(host)
    if (!byDtype) this.weightCache.set(host, (byDtype = new Map()))
    let dw = byDtype.get(dtype)
    if (!dw) byDtype.set(dtype, (dw = uploadLayerWeights(this.ctx, host, dtype)))
    return dw
  }

  /**
   * int8 device weights for `weights`: host weights are quantized on the CPU and uploaded on
   * first use, cached per LayerWeights object; DeviceInt8Weights pass through.
   * @throws MOE_ROUTE_ERR_INPUT_INVALID for f32/f16 DeviceLayerWeights (quantize them with
   * `quantizeDeviceWeights(ctx, dw)` first).
   */
  int8Weights(weights: LayerWeights | DeviceLayerWeights | DeviceInt8Weights): DeviceInt8Weights {
    if (isDeviceInt8Weights(weights)) {
      if (weights.device !== this.ctx.device) throw new MoeError(ErrorCodes.INPUT_INVALID, 'device weights belong to another GPUDevice', { plugin: 'webgpu' })
      return weights
    }
    if (!('experts' in weights)) {
      throw new MoeError(
        ErrorCodes.INPUT_INVALID,
        "the int8 expert kernel needs host LayerWeights (quantized on upload) or DeviceInt8Weights (uploadInt8Weights, or quantizeDeviceWeights(ctx, dw) for f32/f16 weights already on the device); got f32/f16 DeviceLayerWeights",
        { plugin: 'webgpu' },
      )
    }
    let w8 = this.int8Cache.get(weights)
    if (!w8) this.int8Cache.set(weights, (w8 = uploadInt8Weights(this.ctx, weights)))
    return w8
  }

  /** Weights of a call: int8 when the kernel is int8 (asked for, or the weights are int8), else f32/f16. */
  private weightsFor(weights: LayerWeights | DeviceLayerWeights | DeviceInt8Weights, kernel?: ExpertKernel): DeviceLayerWeights | DeviceInt8Weights {
    const k = kernel ?? this.options.expertKernel ?? 'auto'
    if (isDeviceInt8Weights(weights)) {
      if (k !== 'auto' && k !== 'int8') throw new MoeError(ErrorCodes.INPUT_INVALID, `int8 device weights run only with expertKernel 'int8' (or 'auto'), not '${k}'`, { plugin: 'webgpu' })
      return this.int8Weights(weights)
    }
    return k === 'int8' ? this.int8Weights(weights) : this.deviceWeights(weights)
  }

  /**
   * The int8 GEMM variant and tiles of a call whose typical group has `rowsHint` rows, for
   * hidden/intermediate sizes `H`/`I` (option `int8Kernel`; `auto` = subgroup-matrix when the
   * device has it with a fixed subgroup size, else dot4; tiles from option `int8Tiles`, default
   * {@link DEFAULT_INT8_TILES}, split-K fitted to K).
   * @throws MOE_ROUTE_ERR_BACKEND_UNAVAILABLE for `subgroup-matrix` without the feature;
   * MOE_ROUTE_ERR_INPUT_INVALID for a tile that does not fit the device.
   */
  int8Gemm(rowsHint = Infinity, H = 64, I = 64): Int8GemmConfig {
    const want = this.options.int8Kernel ?? 'auto'
    const f = this.ctx.features
    const sgm = f.subgroupMatrix && f.subgroupSize !== null
    if (want === 'subgroup-matrix' && !sgm) {
      throw new MoeError(
        ErrorCodes.BACKEND_UNAVAILABLE,
        "int8Kernel 'subgroup-matrix' needs the chromium-experimental-subgroup-matrix feature and a fixed subgroup size (on Dawn: acquireDevice({ unsafeApis: true }))",
        { plugin: 'webgpu' },
      )
    }
    if (want === 'dot4' || !sgm) return DOT4_CONFIG
    const plans = this.options.int8Tiles ?? DEFAULT_INT8_TILES
    const found = plans.findIndex((p) => rowsHint <= p.maxRows)
    const pi = found < 0 ? plans.length - 1 : found
    const plan = plans[pi]
    const key = `${pi}|${H}|${I}`
    const cached = this.int8Cfgs.get(key)
    if (cached) return cached
    const L = this.ctx.device.limits
    const maxWg = Math.min(L.maxComputeInvocationsPerWorkgroup, L.maxComputeWorkgroupSizeX)
    // a malformed tile is refused; one that does not fit this device gives way to its plan's fallback, if any
    const fits = (kind: 'gateup' | 'down', t: SgmTile): string | null => {
      const valid =
        [t.sgM, t.sgN, t.fm, t.fn, t.sgK ?? 1, t.unroll ?? 1].every((v) => Number.isInteger(v) && v >= 1) &&
        [1, 2].includes(t.stages ?? 1) &&
        ['columns-first', 'rows-first'].includes(t.raster ?? 'columns-first')
      if (!valid) {
        throw new MoeError(ErrorCodes.INPUT_INVALID, `int8 ${kind} tile ${JSON.stringify(t)} is not a valid tile (positive integer counts, stages 1 or 2, raster columns-first or rows-first)`, { plugin: 'webgpu' })
      }
      const S = sgmSubgroups(t)
      const wgBytes = sgmWorkgroupBytes(kind, t)
      return S * f.subgroupSize! <= maxWg && wgBytes <= L.maxComputeWorkgroupStorageSize
        ? null
        : `int8 ${kind} tile ${JSON.stringify(t)} does not fit this device (workgroup ${S * f.subgroupSize!} of at most ${maxWg} invocations, ${wgBytes} of at most ${L.maxComputeWorkgroupStorageSize} bytes of workgroup memory)`
    }
    let tiles: Int8Tiles | undefined = plan
    let gateup: SgmTile | undefined
    let down: SgmTile | undefined
    let misfit: string | null = null
    for (; tiles && !gateup; tiles = tiles.fallback) {
      const g = fitSgmTile(tiles.gateup, H)
      const d = fitSgmTile(tiles.down, I)
      const why = fits('gateup', g) ?? fits('down', d)
      if (why) misfit ??= why
      else [gateup, down] = [g, d]
    }
    if (!gateup || !down) throw new MoeError(ErrorCodes.INPUT_INVALID, `${misfit}${plan.fallback ? ', nor does any fallback of its plan' : ''}`, { plugin: 'webgpu' })
    if (sgmTileDims(gateup).bm !== sgmTileDims(down).bm) {
      throw new MoeError(ErrorCodes.INPUT_INVALID, `int8 tiles of one plan need the same rows per workgroup (gate+up ${sgmTileDims(gateup).bm}, down ${sgmTileDims(down).bm})`, { plugin: 'webgpu' })
    }
    const cfg: Int8GemmConfig = { variant: 'subgroup-matrix', gateup, down, subgroupSize: f.subgroupSize! }
    this.int8Cfgs.set(key, cfg)
    return cfg
  }

  /** Uploads x into a (T+1)×H buffer whose last row is zero (the row padding reads). */
  uploadHidden(x: Float32Array, tokens: number, hidden: number): GPUBuffer {
    assertLength(x, tokens * hidden, 'hidden states')
    const buf = this.ctx.storage((tokens + 1) * hidden * 4, 'hidden')
    this.ctx.device.queue.writeBuffer(buf, 0, x.buffer, x.byteOffset, x.byteLength)
    this.ctx.device.queue.writeBuffer(buf, tokens * hidden * 4, new Float32Array(hidden))
    return buf
  }

  /** Gate matmul on the device. */
  async gate(x: Float32Array, tokens: number, weights: LayerWeights | DeviceLayerWeights | DeviceInt8Weights): Promise<{ logits: Float32Array; kernels?: Record<string, number> }> {
    const dw = this.weightsFor(weights)
    const { hidden: H, experts: E } = dw.shape
    if (tokens === 0) return { logits: new Float32Array(0) }
    const xb = this.uploadHidden(x, tokens, H)
    const logits = this.ctx.storage(tokens * E * 4, 'logits')
    const rec = this.ctx.recorder('moe-route gate')
    rec.run(this.gateKernel(tokens, E), { tokens, experts: E, hidden: H }, [xb, dw.router, logits])
    rec.read(logits, tokens * E * 4)
    rec.releaseAfterSubmit(xb, logits)
    const { reads, kernels } = await rec.submit()
    return { logits: new Float32Array(reads[0]), ...(kernels ? { kernels } : {}) }
  }

  /**
   * The gate kernel for a batch of `tokens` × `experts` outputs (`gateProgramFor` over the
   * layer's `gateTiles`): tiled at large batches, else the team kernels. Bindings: x (at least
   * T rows of H), router (E×H), logits (T×E).
   */
  gateKernel(tokens: number, experts: number): KernelProgram<GateParams> {
    // memoized per (T, E): each batch asks, and a fresh program's cache key is rebuilt and rehashed
    const key = tokens * 2 ** 21 + experts
    let program = experts < 2 ** 21 ? this.gatePrograms.get(key) : undefined
    if (!program) {
      const L = this.ctx.device.limits
      program = gateProgramFor(this.team, tokens, experts, this.options.gateTiles, { maxInvocations: L.maxComputeInvocationsPerWorkgroup, maxWgBytes: L.maxComputeWorkgroupStorageSize })
      if (this.gatePrograms.size >= 256) this.gatePrograms.clear()
      if (experts < 2 ** 21) this.gatePrograms.set(key, program)
    }
    return program
  }

  /** Gate programs by T·2^21 + E (see {@link gateKernel}). */
  private readonly gatePrograms = new Map<number, KernelProgram<GateParams>>()

  /** The int8 expert programs of recent shapes (see {@link int8Programs}), most recent first. */
  private readonly int8Memo: Int8Programs[] = []

  /**
   * The programs of the int8 expert path for H × I and a typical group of `rowsHint` rows: the
   * GEMM config, the two row quantizers, and the decode GEMV kernels (subgroups and at most
   * `int8GemvMaxRows` rows) or the GEMMs; memoized like {@link decodePrograms}.
   */
  private int8Programs(H: number, I: number, rowsHint: number): Int8Programs {
    return recentOrMake(
      this.int8Memo,
      (m) => m.H === H && m.I === I && m.rowsHint === rowsHint,
      () => {
        const cfg = this.int8Gemm(rowsHint, H, I)
        const sgSize = this.team.subgroups ? this.team.team : null
        const gemv = sgSize !== null && rowsHint <= (this.options.int8GemvMaxRows ?? 2)
        const maxWgBytes = this.ctx.device.limits.maxComputeWorkgroupStorageSize
        return {
          H,
          I,
          rowsHint,
          cfg,
          quantX: quantizeRowsProgram(true, quantizeRowsWorkgroup(H, this.maxWg)),
          quantAct: quantizeRowsProgram(false, quantizeRowsWorkgroup(I, this.maxWg)),
          gemvGateUp: gemv ? int8GemvProgram(int8GemvLayout('gateup', H, rowsHint, sgSize, this.maxWg, maxWgBytes)) : null,
          gemvDown: gemv ? int8GemvProgram(int8GemvLayout('down', I, rowsHint, sgSize, this.maxWg, maxWgBytes)) : null,
          gemmGateUp: gemv ? null : int8GemmProgram('gateup', cfg),
          gemmDown: gemv ? null : int8GemmProgram('down', cfg),
        }
      },
    )
  }

  /** The decode expert programs of recent shapes (see {@link decodePrograms}), most recent first. */
  private readonly decodeMemo: DecodePrograms[] = []

  /**
   * The gate+up and down programs of the f32/f16 decode path (multi-row layouts, else the
   * single-row GEMV) for weights of `dtype`, H × I, a typical group of `rowsHint` rows and
   * `rows` weight rows per GEMV workgroup: memoized, since the plan lookup, the layouts and the
   * programs' cache keys are the same for every batch of a decode loop.
   */
  private decodePrograms(dtype: WeightsDtype, H: number, I: number, rowsHint: number, rows: number): DecodePrograms {
    return recentOrMake(
      this.decodeMemo,
      (m) => m.dtype === dtype && m.H === H && m.I === I && m.rowsHint === rowsHint && (m.multi || m.rows === rows),
      (): DecodePrograms => {
        const multi = this.multiRowPlan(rowsHint, { gateup: H, down: I })
        if (multi) return { dtype, H, I, rowsHint, rows, multi: true, gateup: multiRowProgram(dtype, 'gateup', multi.gateup, H / 8), down: multiRowProgram(dtype, 'down', multi.down, I / 8) }
        const mt = gemvBlockRows(rowsHint)
        const sg = this.team.subgroups ? this.team.team : null
        return {
          dtype, H, I, rowsHint, rows, multi: false,
          gateup: gemvGateUpProgram(dtype, gemvLayout(H / 8, mt, sg, { rows, mats: 2, maxWg: this.maxWg })),
          down: gemvDownProgram(dtype, gemvLayout(I / 8, mt, sg, { rows, mats: 1, maxWg: this.maxWg })),
        }
      },
    )
  }

  /**
   * The multi-row decode layouts for a typical group of `rowsHint` rows, or null (single-row
   * GEMV); `k` = the reduction lengths (H for gate+up, I for down) that plan rows with `minK`
   * need. Without a `multiRowPlans` option, CPU adapters (lavapipe, SwiftShader) run the
   * single-row kernels: llvmpipe compiles each multi-row kernel for tens of seconds (it splits a
   * compute shader into coroutines at its barriers) and a CPU gains nothing from them.
   */
  multiRowPlan(rowsHint: number, k?: { gateup: number; down: number }): MultiRowPlan | null {
    const plans = this.options.multiRowPlans ?? (CPU_ADAPTER.test(this.ctx.adapterName) ? 'off' : multiRowPlansForGpu(this.ctx.adapterDevice))
    if (plans === 'off') return null
    return multiRowPlanFor(rowsHint, plans, { maxWg: this.maxWg, maxWgBytes: this.ctx.device.limits.maxComputeWorkgroupStorageSize }, k)
  }

  private pickKernel(kernel: ExpertKernel | undefined, rows: number): ExpertKernelUsed {
    const k = kernel ?? this.options.expertKernel ?? 'auto'
    if (k !== 'auto') return k
    return this.autoExpertKernel(rows)
  }

  /**
   * The f32/f16 expert kernels `auto` runs for groups of `rows` rows (see `gemvMaxRows`): the
   * decode kernels up to `gemvMaxRows` rows and wherever the multi-row plan table covers the
   * group, else the GEMM. On an H100 the multi-row kernels (32-row blocks, weights re-read per
   * block) beat the GEMM at every group size measured: Mixtral-8x7B T = 512 / 2048 11.4 / 44.0
   * against 21.2 / 70.3 ms per layer call (bench/results/multirow-large-h100/).
   */
  autoExpertKernel(rows: number): 'gemv' | 'gemm' {
    return rows <= (this.options.gemvMaxRows ?? 64) || this.multiRowPlan(rows) !== null ? 'gemv' : 'gemm'
  }

  /**
   * Encodes the grouped experts and the combine. `x` has T+1 rows (last zero); `tokenRows`
   * holds row+1 per (token, slot). Returns the T×H output buffer (caller releases it).
   */
  encodeExperts(
    rec: Recorder,
    dw: DeviceLayerWeights | DeviceInt8Weights,
    b: { x: GPUBuffer; rowToken: GPUBuffer; rowWeight: GPUBuffer; offsets: GPUBuffer; tokenRows: GPUBuffer },
    p: { tokens: number; rowsBound: number; slots: number; kernel: ExpertKernelUsed; rowsHint: number; expertSlots: number; indirect?: GPUBuffer; maxRows?: number; experts?: number },
  ): GPUBuffer {
    if (p.kernel === 'int8' || isDeviceInt8Weights(dw)) return this.encodeExpertsInt8(rec, this.int8Weights(dw), b, p)
    const { hidden: H } = dw.shape
    const y = this.ctx.storage(Math.max(1, p.rowsBound) * H * 4, 'expert-out')
    this.encodeExpertRows(rec, dw, b, p, y)
    const out = this.encodeCombine(rec, y, b, p.tokens, H, p.slots)
    rec.releaseAfterSubmit(y)
    return out
  }

  /**
   * The grouped SwiGLU experts alone (f32/f16 weights): rows of the plan's groups into `y`
   * (R×H). `p.experts` is the E of the plan when the weights hold fewer experts (an expert
   * store's slots, mapped through the offsets' slot table).
   */
  encodeExpertRows(
    rec: Recorder,
    dw: DeviceLayerWeights,
    b: { x: GPUBuffer; rowToken: GPUBuffer; offsets: GPUBuffer },
    p: { tokens: number; rowsBound: number; kernel: ExpertKernelUsed; rowsHint: number; expertSlots: number; indirect?: GPUBuffer; maxRows?: number; experts?: number },
    y: GPUBuffer,
  ): void {
    const { hidden: H, intermediate: I } = dw.shape
    const E = p.experts ?? dw.shape.experts
    const R = Math.max(1, p.rowsBound)
    const act = this.ctx.storage(R * I * 4, 'act')
    if (p.rowsBound > 0) {
      const dp = p.kernel === 'gemv' ? this.decodePrograms(dw.dtype, H, I, p.rowsHint, this.options.gemvRows ?? gemvRowsFor(p.rowsBound / E, I)) : null
      if (dp?.multi) {
        const slots = p.expertSlots
        rec.run(dp.gateup, { tokens: p.tokens, ndim: I, rowsTotal: R, experts: E, slots }, [b.x, b.rowToken, b.offsets, dw.gate, dw.up, act])
        rec.run(dp.down, { tokens: p.tokens, ndim: H, rowsTotal: R, experts: E, slots }, [act, b.offsets, dw.down, y])
      } else if (dp) {
        rec.run(dp.gateup, { tokens: p.tokens, hidden: H, intermediate: I, experts: E, slots: p.expertSlots }, [b.x, b.rowToken, b.offsets, dw.gate, dw.up, act])
        rec.run(dp.down, { hidden: H, intermediate: I, experts: E, rowsTotal: R, slots: p.expertSlots }, [act, b.offsets, dw.down, y])
      } else {
        const ind = (offset: number) => (p.indirect ? { indirect: { buffer: p.indirect, offset } } : { maxRows: p.maxRows ?? 0 })
        rec.run(gemmProgram(dw.dtype, 'gateup'), { tokens: p.tokens, kdim: H, ndim: I, experts: E, rowsTotal: R, ...ind(0) }, [b.x, b.rowToken, b.offsets, dw.gate, dw.up, act])
        rec.run(gemmProgram(dw.dtype, 'down'), { tokens: p.tokens, kdim: I, ndim: H, experts: E, rowsTotal: R, ...ind(12) }, [act, b.offsets, dw.down, y])
      }
    }
    rec.releaseAfterSubmit(act)
  }

  /** The weighted combine of expert rows `y` back into a tokens × hidden output (caller releases it). */
  encodeCombine(rec: Recorder, y: GPUBuffer, b: { rowWeight: GPUBuffer; tokenRows: GPUBuffer }, tokens: number, hidden: number, slots: number): GPUBuffer {
    const out = this.ctx.storage(Math.max(1, tokens) * hidden * 4, 'layer-out')
    if (tokens > 0) rec.run(combineProgram(), { tokens, hidden, slots }, [y, b.rowWeight, b.tokenRows, out])
    return out
  }

  /**
   * The int8 (W8A8) experts: quantize the gathered x rows → gate+up int8 GEMM (act =
   * silu(g)·u, f32) → quantize act rows → down int8 GEMM (y, f32) → the same combine. The
   * quantized A buffers have `int8SpareRows` zero rows after the last row.
   */
  private encodeExpertsInt8(
    rec: Recorder,
    w8: DeviceInt8Weights,
    b: { x: GPUBuffer; rowToken: GPUBuffer; rowWeight: GPUBuffer; offsets: GPUBuffer; tokenRows: GPUBuffer },
    p: { tokens: number; rowsBound: number; slots: number; rowsHint: number; expertSlots: number; indirect?: GPUBuffer; maxRows?: number },
  ): GPUBuffer {
    const { hidden: H, intermediate: I, experts: E } = w8.shape
    const progs = this.int8Programs(H, I, p.rowsHint)
    const cfg = progs.cfg
    const ctx = this.ctx
    const R = Math.max(1, p.rowsBound)
    const Ra = R + int8SpareRows(cfg)
    const y = ctx.storage(R * H * 4, 'expert-out')
    const out = ctx.storage(Math.max(1, p.tokens) * H * 4, 'layer-out')
    const transient = [y]
    if (p.rowsBound > 0) {
      const xq = ctx.storage(Ra * H, 'x-int8')
      const sx = ctx.storage(Ra * 4, 'x-scale')
      const act = ctx.storage(R * I * 4, 'act')
      const aq = ctx.storage(Ra * I, 'act-int8')
      const sa = ctx.storage(Ra * 4, 'act-scale')
      const ind = (offset: number) => (p.indirect ? { indirect: { buffer: p.indirect, offset } } : { maxRows: p.maxRows ?? 0 })
      // decode groups: the int8 GEMV kernels (same sums, bit-identical), else the GEMMs
      rec.run(progs.quantX, { tokens: p.tokens, kdim: H, rowsAlloc: Ra, experts: E }, [b.x, b.rowToken, b.offsets, xq, sx])
      if (progs.gemvGateUp) rec.run(progs.gemvGateUp, { kdim: H, ndim: I, experts: E, rowsAlloc: Ra, slots: p.expertSlots }, [xq, sx, b.offsets, w8.gateQ, w8.upQ, w8.gateScale, w8.upScale, act])
      else rec.run(progs.gemmGateUp!, { kdim: H, ndim: I, experts: E, rowsAlloc: Ra, ...ind(0) }, [xq, sx, b.offsets, w8.gateQ, w8.upQ, w8.gateScale, w8.upScale, act])
      rec.run(progs.quantAct, { tokens: p.tokens, kdim: I, rowsAlloc: Ra, experts: E }, [act, b.offsets, aq, sa])
      if (progs.gemvDown) rec.run(progs.gemvDown, { kdim: I, ndim: H, experts: E, rowsAlloc: Ra, slots: p.expertSlots }, [aq, sa, b.offsets, w8.downQ, w8.downScale, y])
      else rec.run(progs.gemmDown!, { kdim: I, ndim: H, experts: E, rowsAlloc: Ra, ...ind(12) }, [aq, sa, b.offsets, w8.downQ, w8.downScale, y])
      transient.push(xq, sx, act, aq, sa)
    }
    if (p.tokens > 0) rec.run(combineProgram(), { tokens: p.tokens, hidden: H, slots: p.slots }, [y, b.rowWeight, b.tokenRows, out])
    rec.releaseAfterSubmit(...transient)
    return out
  }

  /**
   * Grouped SwiGLU experts over any DispatchPlan (exact-size or padded; padding rows, token
   * −1, are computed on a zero row), then the weighted combine in token order.
   */
  async experts(x: Float32Array, plan: DispatchPlan, weights: LayerWeights | DeviceLayerWeights | DeviceInt8Weights, kernel?: ExpertKernel): Promise<{ output: Float32Array; kernels?: Record<string, number>; expertKernel: ExpertKernelUsed }> {
    const dw = this.weightsFor(weights, kernel)
    const { hidden: H, experts: E } = dw.shape
    const T = plan.tokens
    if (plan.experts !== E) throw new MoeError(ErrorCodes.SHAPE_MISMATCH, `plan has ${plan.experts} experts, weights have ${E}`)
    const rows = plan.offsets[E]
    if (plan.rowToken.length < rows || plan.rowWeight.length < rows) throw new MoeError(ErrorCodes.SHAPE_MISMATCH, `plan has ${rows} rows but shorter row arrays`)
    // token → rows (row + 1), slots = most rows of any token
    const perToken = new Int32Array(T)
    let maxRows = 0
    let active = 0
    for (let e = 0; e < E; e++) {
      const n = plan.offsets[e + 1] - plan.offsets[e]
      maxRows = Math.max(maxRows, n)
      if (n > 0) active++
    }
    for (let r = 0; r < rows; r++) {
      const t = plan.rowToken[r]
      if (t >= T) throw new MoeError(ErrorCodes.INPUT_INVALID, `plan row ${r} names token ${t} of ${T}`)
      if (t >= 0) perToken[t]++
    }
    let slots = 1
    for (let t = 0; t < T; t++) slots = Math.max(slots, perToken[t])
    const tokenRows = new Uint32Array(T * slots)
    perToken.fill(0)
    for (let r = 0; r < rows; r++) {
      const t = plan.rowToken[r]
      if (t >= 0) tokenRows[t * slots + perToken[t]++] = r + 1
    }
    const kind = isDeviceInt8Weights(dw) ? 'int8' : this.pickKernel(kernel, maxRows)
    const ctx = this.ctx
    const xb = this.uploadHidden(x, T, H)
    const bufs = {
      x: xb,
      rowToken: ctx.upload(plan.rowToken.subarray(0, rows), 'rowToken', 16),
      rowWeight: ctx.upload(plan.rowWeight.subarray(0, rows), 'rowWeight', 16),
      offsets: ctx.upload(withActiveList(plan.offsets, E), 'offsets'),
      tokenRows: ctx.upload(tokenRows, 'tokenRows', 16),
    }
    const rec = ctx.recorder('moe-route experts')
    const out = this.encodeExperts(rec, dw, bufs, { tokens: T, rowsBound: rows, slots, kernel: kind, rowsHint: Math.ceil(rows / Math.max(1, active)), expertSlots: active, maxRows })
    rec.read(out, T * H * 4)
    rec.releaseAfterSubmit(out, ...Object.values(bufs))
    const { reads, kernels } = await rec.submit()
    return { output: new Float32Array(reads[0]), ...(kernels ? { kernels } : {}), expertKernel: kind }
  }
}
