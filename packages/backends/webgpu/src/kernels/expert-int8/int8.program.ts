import { grid1d, uniforms, type Dispatch, type KernelProgram } from '../../gpu/program.js'
import { DEFAULT_SGM_TILE, DOT4_BM, DOT4_BN, dot4GemmWgsl, sgmGemmWgsl, sgmTileDims, sgmTileKey, sgmWorkgroupBytes, type Int8GemmKind, type SgmTile } from './int8-gemm.wgsl.js'
import { QUANT_W_WG, quantizeRowsWgsl, quantizeWeightsWgsl } from './quantize.wgsl.js'

/** Which int8 GEMM: portable `dot4I8Packed`, or tensor cores through `chromium-experimental-subgroup-matrix`. */
export type Int8Variant = 'dot4' | 'subgroup-matrix'

/** Init-time choice of the int8 GEMM kernels (both GEMMs of a layer use the same tile). */
export type Int8GemmConfig =
  | { readonly variant: 'dot4' }
  | { readonly variant: 'subgroup-matrix'; readonly tile: SgmTile; readonly subgroupSize: number }

/** Rows and columns per workgroup (what the offsets kernel's indirect args are computed with). */
export function int8TileDims(cfg: Int8GemmConfig): { bm: number; bn: number } {
  return cfg.variant === 'dot4' ? { bm: DOT4_BM, bn: DOT4_BN } : sgmTileDims(cfg.tile)
}

/** Spare zero rows after the last group in the quantized A buffers: a full row tile may read past it. */
export const int8SpareRows = (cfg: Int8GemmConfig): number => Math.max(64, int8TileDims(cfg).bm)

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
  const { bm, bn } = int8TileDims(cfg)
  const sgm = cfg.variant === 'subgroup-matrix'
  return {
    name: `experts-int8-${sgm ? 'sgm' : 'dot4'}-${kind === 'gateup' ? 'gate-up' : 'down'}`,
    cacheKey: sgm ? `int8-gemm|${kind}|sgm|${sgmTileKey(cfg.tile)}|sgsize=${cfg.subgroupSize}` : `int8-gemm|${kind}|dot4|${bm}x${bn}`,
    getShaderSource: () => (sgm ? sgmGemmWgsl(kind, cfg.tile, cfg.subgroupSize) : dot4GemmWgsl(kind)),
    getRunData: (p): { dispatch: Dispatch; uniforms: Uint32Array } => ({
      dispatch: p.indirect ? { indirect: p.indirect.buffer, offset: p.indirect.offset } : [Math.ceil(p.ndim / bn), Math.ceil((p.maxRows ?? 0) / bm), p.experts],
      uniforms: uniforms([p.kdim, p.ndim, p.rowsAlloc]),
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
 * scale; else: act, offsets, q, scale. One workgroup per row.
 */
export function quantizeRowsProgram(gather: boolean): KernelProgram<QuantizeRowsParams> {
  return {
    name: gather ? 'experts-int8-quantize-x' : 'experts-int8-quantize-act',
    cacheKey: `int8-quantize-rows|${gather ? 'gather' : 'rows'}`,
    getShaderSource: () => quantizeRowsWgsl(gather),
    getRunData: (p) => ({ dispatch: grid1d(p.rowsAlloc), uniforms: uniforms([p.tokens, p.kdim, p.rowsAlloc, p.experts]) }),
  }
}

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

export { DEFAULT_SGM_TILE, DOT4_BM, DOT4_BN, sgmTileDims, sgmWorkgroupBytes, type Int8GemmKind, type SgmTile }
