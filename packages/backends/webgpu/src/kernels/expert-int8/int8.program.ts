import { grid1d, uniforms, type Dispatch, type KernelProgram } from '../../gpu/program.js'
import { DEFAULT_SGM_TILE, DOT4_BM, DOT4_BN, dot4GemmWgsl, sgmGemmWgsl, sgmSubgroups, sgmTileDims, sgmTileKey, sgmWorkgroupBytes, type Int8GemmKind, type SgmTile } from './int8-gemm.wgsl.js'
import { QUANT_WG, QUANT_W_WG, quantizeRowsWgsl, quantizeRowsWorkgroup, quantizeWeightsWgsl } from './quantize.wgsl.js'
import { int8GemvWgsl, int8GemvWorkgroupBytes, type Int8GemvConsts } from './int8-gemv.wgsl.js'

/** Which int8 GEMM: portable `dot4I8Packed`, or tensor cores through `chromium-experimental-subgroup-matrix`. */
export type Int8Variant = 'dot4' | 'subgroup-matrix'

/**
 * Init-time choice of the int8 GEMM kernels of one call: dot4, or subgroup-matrix tiles for
 * the gate+up and the down GEMM (the same BM: both launch one row tile per BM rows).
 */
export type Int8GemmConfig =
  | { readonly variant: 'dot4' }
  | { readonly variant: 'subgroup-matrix'; readonly gateup: SgmTile; readonly down: SgmTile; readonly subgroupSize: number }

/** Rows per workgroup and columns per workgroup of each GEMM (what the offsets kernel's indirect args are computed with). */
export function int8TileDims(cfg: Int8GemmConfig): { bm: number; bn: number; bnDown: number } {
  if (cfg.variant === 'dot4') return { bm: DOT4_BM, bn: DOT4_BN, bnDown: DOT4_BN }
  return { bm: sgmTileDims(cfg.gateup).bm, bn: sgmTileDims(cfg.gateup).bn, bnDown: sgmTileDims(cfg.down).bn }
}

/** Spare zero rows after the last group in the quantized A buffers: a full row tile may read past it. */
export const int8SpareRows = (cfg: Int8GemmConfig): number => Math.max(64, int8TileDims(cfg).bm)

/**
 * The tile with split-K and unrolling reduced (halved) until each of the sgK slices of K is
 * a whole number of unrolled 32-deep steps (K a multiple of 32); split-K is kept first. A
 * staged tile (`stage: 'workgroup'`) gets sgK 1 (its K step is BK = 32·unroll).
 */
export function fitSgmTile(tile: SgmTile, K: number): SgmTile {
  const steps = K / 32
  // a staged tile has no split-K
  let sgK = tile.stage === 'workgroup' ? 1 : (tile.sgK ?? 1)
  let unroll = tile.unroll ?? 1
  // split-K (parallelism) first, then unrolling
  while (sgK > 1 && steps % sgK !== 0) sgK >>= 1
  while (unroll > 1 && steps % (sgK * unroll) !== 0) unroll >>= 1
  return { ...tile, sgK, unroll }
}

/** The gate+up and down tiles of a plan, and what to run where they do not fit the device. */
export interface Int8Tiles {
  readonly gateup: SgmTile
  readonly down: SgmTile
  /**
   * Tiles to run when these need more workgroup memory or invocations than the device has
   * (tried in turn down the chain); without one such a plan is refused on that device.
   */
  readonly fallback?: Int8Tiles
}

/**
 * Tensor-core tiles by group size: the first plan whose `maxRows` is at least the typical
 * group (mean rows per expert, or the capacity when static) runs, else the last. (Groups of
 * ≤ 2 rows run the GEMV kernels.)
 */
export interface Int8TilePlan extends Int8Tiles {
  readonly maxRows: number
}

/** Staged prefill tile: 2×2 subgroups of 2×4 fragments (64×128 per workgroup of 128), BK 64 through workgroup memory (21.5 KB for gate+up). */
export const STAGED_SGM_TILE: SgmTile = { sgM: 2, sgN: 2, fm: 2, fn: 4, unroll: 2, stage: 'workgroup' }

/** Staged tile of small groups: 1×4 subgroups of 1×2 fragments (16×128 per workgroup of 128), BK 64, two stages (35 KB for gate+up). */
export const STAGED_SMALL_SGM_TILE: SgmTile = { sgM: 1, sgN: 4, fm: 1, fn: 2, unroll: 2, stage: 'workgroup', stages: 2 }

/**
 * Default plans, measured on an H100 (bench/int8-sweep.bench.ts, results/staged2-h100/): groups
 * of ≤ 16 rows the two-stage 16-row staged tile (ms of GEMMs, Mixtral T 32 / 64: 0.69 / 1.04 vs
 * 0.83 / 1.15 for the storage-fed split-K plans; OLMoE T 32 / 128: 0.26 / 0.35 vs 0.30 / 0.41),
 * larger groups the 64-row staged tile (Mixtral T 128 / 512 / 2048 / 4096: 1.11 / 2.53 / 8.36 /
 * 15.9 vs 2.15 / 5.02 / 16.2 / 31.2). Where the device's workgroup memory is smaller (the
 * staged tiles need 35 and 21.5 KB), the storage-fed tiles measured before them run: one
 * subgroup of 1×4 fragments with split-K 8, 1×2 subgroups of 2×2 fragments, and
 * {@link DEFAULT_SGM_TILE}, then tiles that fit WebGPU's default 16 KB.
 */
export const DEFAULT_INT8_TILES: readonly Int8TilePlan[] = [
  {
    maxRows: 16,
    gateup: STAGED_SMALL_SGM_TILE,
    down: STAGED_SMALL_SGM_TILE,
    fallback: {
      gateup: { ...STAGED_SMALL_SGM_TILE, stages: 1 },
      down: { ...STAGED_SMALL_SGM_TILE, stages: 1 },
      fallback: {
        gateup: { sgM: 1, sgN: 1, fm: 1, fn: 4, sgK: 8 },
        down: { sgM: 1, sgN: 1, fm: 1, fn: 4, sgK: 8 },
        fallback: { gateup: { sgM: 1, sgN: 1, fm: 1, fn: 4, sgK: 4 }, down: { sgM: 1, sgN: 1, fm: 1, fn: 4, sgK: 4 } },
      },
    },
  },
  { maxRows: Infinity, gateup: STAGED_SGM_TILE, down: STAGED_SGM_TILE, fallback: { gateup: DEFAULT_SGM_TILE, down: DEFAULT_SGM_TILE } },
]

/** Run parameters of the int8 GEMMs. */
export interface Int8GemmParams {
  readonly kdim: number
  readonly ndim: number
  readonly experts: number
  /** Rows of the quantized A buffer (≥ offsets[E] + BM). */
  readonly rowsAlloc: number
  /** Largest group (rows) when known on the host; else `indirect` args from the offsets kernel. */
  readonly maxRows?: number
  readonly indirect?: { readonly buffer: GPUBuffer; readonly offset: number }
}

/**
 * int8 grouped GEMM. Bindings — `gateup`: xq, sx, offsets, gateQ, upQ, gateScale, upScale,
 * act; `down`: actq, sa, offsets, downQ, downScale, y. Grid (ceil(N/BN), ceil(maxRows/BM), E)
 * or indirect.
 */
export function int8GemmProgram(kind: Int8GemmKind, cfg: Int8GemmConfig): KernelProgram<Int8GemmParams> {
  const dims = int8TileDims(cfg)
  const bm = dims.bm
  const bn = kind === 'gateup' ? dims.bn : dims.bnDown
  const tile = cfg.variant === 'subgroup-matrix' ? (kind === 'gateup' ? cfg.gateup : cfg.down) : null
  return {
    name: `experts-int8-${tile ? 'sgm' : 'dot4'}-${kind === 'gateup' ? 'gate-up' : 'down'}`,
    cacheKey: tile ? `int8-gemm|${kind}|sgm|${sgmTileKey(tile)}|sgsize=${(cfg as { subgroupSize: number }).subgroupSize}` : `int8-gemm|${kind}|dot4|${bm}x${bn}`,
    getShaderSource: () => (tile ? sgmGemmWgsl(kind, tile, (cfg as { subgroupSize: number }).subgroupSize) : dot4GemmWgsl(kind)),
    getRunData: (p): { dispatch: Dispatch; uniforms: Uint32Array } => ({
      dispatch: p.indirect ? { indirect: p.indirect.buffer, offset: p.indirect.offset } : [Math.ceil(p.ndim / bn), Math.ceil((p.maxRows ?? 0) / bm), p.experts],
      uniforms: uniforms([p.kdim, p.ndim, p.rowsAlloc]),
    }),
  }
}

const nextPow2 = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(1, n)))

/**
 * Layout of the int8 decode kernel for reduction length K (a multiple of 64): the fewest
 * invocations (a power of two, at least one subgroup, at most `maxWg`) that keep each
 * invocation's stationary weights within 64 words, and group rows per block up to the
 * typical group (≤ 8), fewer when registers (≈ 160 words of weights and accumulators) or
 * workgroup memory (`maxWgBytes`) run short.
 */
export function int8GemvLayout(kind: Int8GemmKind, K: number, rowsHint: number, subgroupSize: number, maxWg: number, maxWgBytes: number): Int8GemvConsts {
  const nm = kind === 'gateup' ? 2 : 1
  const kc = K / 4
  const top = 2 ** Math.floor(Math.log2(Math.max(subgroupSize, maxWg)))
  let wg = Math.max(subgroupSize, 32)
  while (wg < top && nm * 16 * Math.ceil(kc / wg) > 64) wg *= 2
  const iters = Math.ceil(kc / wg)
  const mtRegs = 2 ** Math.floor(Math.log2(Math.max(1, Math.floor(160 / (16 * nm)) - iters)))
  let mt = Math.min(8, nextPow2(rowsHint), mtRegs)
  while (mt > 1 && int8GemvWorkgroupBytes({ kind, mt, wg, subgroupSize }) > maxWgBytes) mt /= 2
  return { kind, mt, wg, subgroupSize, kc }
}

/** Run parameters of the int8 decode kernels. */
export interface Int8GemvParams {
  readonly kdim: number
  readonly ndim: number
  readonly experts: number
  readonly rowsAlloc: number
  /** Workgroup rows = slots of the non-empty expert list (at most E; more slots only exit). */
  readonly slots: number
}

/**
 * int8 decode kernel (see `int8-gemv.wgsl.ts`). Bindings — `gateup`: xq, sx, offsets (with
 * the non-empty expert list), gateQ, upQ, gateScale, upScale, act; `down`: aq, sa, offsets,
 * downQ, downScale, y. Grid (N/16, slots).
 */
export function int8GemvProgram(c: Int8GemvConsts): KernelProgram<Int8GemvParams> {
  return {
    name: `experts-int8-gemv-${c.kind === 'gateup' ? 'gate-up' : 'down'}`,
    cacheKey: `int8-gemv|${c.kind}|wg=${c.wg}|mt=${c.mt}|kc=${c.kc}|sg=${c.subgroupSize}`,
    getShaderSource: () => int8GemvWgsl(c),
    getRunData: (p) => ({
      dispatch: [p.ndim / 16, Math.max(1, Math.min(p.experts, p.slots)), 1],
      uniforms: uniforms([p.kdim, p.ndim, p.rowsAlloc, p.experts]),
    }),
  }
}

/** Run parameters of the activation quantizer. */
export interface QuantizeRowsParams {
  /** T (gather: x has T+1 rows, row T zero). */
  readonly tokens: number
  /** Row length (H for x, I for act), a multiple of 4. */
  readonly kdim: number
  /** Rows written (used rows, then zeros up to here). */
  readonly rowsAlloc: number
  readonly experts: number
}

/**
 * Per-row int8 quantization of activations. `gather` bindings: x, rowToken, offsets, q,
 * scale; else: act, offsets, q, scale. One workgroup of `wg` invocations per row.
 */
export function quantizeRowsProgram(gather: boolean, wg = QUANT_WG): KernelProgram<QuantizeRowsParams> {
  return {
    name: gather ? 'experts-int8-quantize-x' : 'experts-int8-quantize-act',
    cacheKey: `int8-quantize-rows|${gather ? 'gather' : 'rows'}|wg=${wg}`,
    getShaderSource: () => quantizeRowsWgsl(gather, wg),
    getRunData: (p) => ({ dispatch: grid1d(p.rowsAlloc), uniforms: uniforms([p.tokens, p.kdim, p.rowsAlloc, p.experts]) }),
  }
}

export { quantizeRowsWorkgroup }

/** Run parameters of the weight quantizer. */
export interface QuantizeWeightsParams {
  /** Output channels N (rows of each expert's `nn.Linear` N×K matrix), a multiple of 4. */
  readonly ndim: number
  readonly kdim: number
  readonly experts: number
}

/** Device weights → int8 K×N per expert + scales; bindings: w (E×N×K, f32 or packed f16), q, scale. */
export function quantizeWeightsProgram(dtype: 'f32' | 'f16'): KernelProgram<QuantizeWeightsParams> {
  return {
    name: 'int8-quantize-weights',
    cacheKey: `int8-quantize-weights|${dtype}|wg=${QUANT_W_WG}`,
    getShaderSource: () => quantizeWeightsWgsl(dtype),
    getRunData: (p) => ({ dispatch: grid1d((p.experts * p.ndim) / 4), uniforms: uniforms([p.ndim, p.kdim, p.experts]) }),
  }
}

export { DEFAULT_SGM_TILE, DOT4_BM, DOT4_BN, sgmSubgroups, sgmTileDims, sgmWorkgroupBytes, type Int8GemmKind, type SgmTile }
