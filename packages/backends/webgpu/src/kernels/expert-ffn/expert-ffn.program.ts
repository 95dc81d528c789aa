import { uniforms, type Dispatch, type KernelProgram } from '../../gpu/program.js'
import { GEMM_BM, GEMM_BN, gemmWgsl } from './expert-gemm.wgsl.js'
import { gemvDownWgsl, gemvGateUpWgsl, type ExpertGemvConsts } from './expert-gemv.wgsl.js'

/** Weight storage of the expert kernels. */
export type WeightsDtype = 'f32' | 'f16'

/** Init-time layout of the decode kernels (weights dtype aside). */
export type GemvLayout = Omit<ExpertGemvConsts, 'dtype'>

const gemvKey = (l: GemvLayout) => `wg=${l.wg}|rows=${l.rows}|mt=${l.mt}|kc=${l.kc}|sg=${l.subgroupSize ?? 'none'}`

/**
 * Decode layout for a reduction length of `kChunks` 8-wide chunks over `mats` weight matrices
 * (2 for gate+up, 1 for down): 4 weight rows per workgroup and the fewest invocations (a power
 * of two, at least one subgroup and the rows·mt that finish a block, at most `maxWg`) that
 * keep each invocation's stationary weights within 16 chunks (64 registers).
 */
export function gemvLayout(kChunks: number, mt: number, subgroupSize: number | null, opts: { rows?: number; mats?: number; maxWg?: number } = {}): GemvLayout {
  const rows = opts.rows ?? 4
  const mats = opts.mats ?? 1
  const maxWg = Math.max(32, opts.maxWg ?? 256)
  let wg = Math.max(subgroupSize ?? 32, nextPow2(rows * mt))
  while (wg < maxWg && rows * mats * Math.ceil(kChunks / wg) > 16) wg *= 2
  return { wg: Math.min(wg, 2 ** Math.floor(Math.log2(maxWg))), rows, mt, subgroupSize, kc: kChunks }
}

const nextPow2 = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(1, n)))

/** Run parameters of the decode gate+up kernel. */
export interface GemvGateUpParams {
  readonly tokens: number
  readonly hidden: number
  readonly intermediate: number
  readonly experts: number
  /** Workgroup rows = slots of the non-empty expert list (at most E; more slots only exit). */
  readonly slots: number
}

/** Decode gate+up; bindings: x ((T+1)×H, last row zero), rowToken, offsets (E+1 offsets, then the non-empty expert list), gate, up, act (R×I). */
export function gemvGateUpProgram(dtype: WeightsDtype, layout: GemvLayout): KernelProgram<GemvGateUpParams> {
  return {
    name: 'experts-gemv-gate-up',
    cacheKey: `gemv-gate-up|${dtype}|${gemvKey(layout)}`,
    getShaderSource: () => gemvGateUpWgsl({ ...layout, dtype }),
    getRunData: ({ tokens, hidden, intermediate, experts, slots }) => ({
      dispatch: [Math.ceil(intermediate / layout.rows), Math.max(1, Math.min(experts, slots)), 1],
      uniforms: uniforms([tokens, hidden / 8, intermediate, experts]),
    }),
  }
}

/** Run parameters of the decode down kernel. */
export interface GemvDownParams {
  readonly hidden: number
  readonly intermediate: number
  readonly experts: number
  readonly rowsTotal: number
  /** As for gate+up. */
  readonly slots: number
}

/** Decode down; bindings: act (R×I), offsets, down, y (R×H). */
export function gemvDownProgram(dtype: WeightsDtype, layout: GemvLayout): KernelProgram<GemvDownParams> {
  return {
    name: 'experts-gemv-down',
    cacheKey: `gemv-down|${dtype}|${gemvKey(layout)}`,
    getShaderSource: () => gemvDownWgsl({ ...layout, dtype }),
    getRunData: ({ hidden, intermediate, experts, rowsTotal, slots }) => ({
      dispatch: [Math.ceil(hidden / layout.rows), Math.max(1, Math.min(experts, slots)), 1],
      uniforms: uniforms([hidden, intermediate / 8, rowsTotal, experts]),
    }),
  }
}

/** Run parameters of the grouped GEMM kernels. */
export interface GemmParams {
  readonly tokens: number
  readonly kdim: number
  readonly ndim: number
  readonly experts: number
  readonly rowsTotal: number
  /** Largest group (rows) when known on the host; else `indirect` args from the offsets kernel. */
  readonly maxRows?: number
  readonly indirect?: { readonly buffer: GPUBuffer; readonly offset: number }
}

function gemmDispatch(p: GemmParams): Dispatch {
  if (p.indirect) return { indirect: p.indirect.buffer, offset: p.indirect.offset }
  return [Math.ceil(p.ndim / GEMM_BN), Math.ceil((p.maxRows ?? 0) / GEMM_BM), p.experts]
}

/**
 * Prefill grouped GEMM. `gateup` bindings: x, rowToken, offsets, gate, up, act;
 * `down` bindings: act, offsets, down, y.
 */
export function gemmProgram(dtype: WeightsDtype, kind: 'gateup' | 'down'): KernelProgram<GemmParams> {
  return {
    name: kind === 'gateup' ? 'experts-gemm-gate-up' : 'experts-gemm-down',
    cacheKey: `gemm|${kind}|${dtype}|${GEMM_BM}x${GEMM_BN}`,
    getShaderSource: () => gemmWgsl({ dtype, kind }),
    getRunData: (p) => ({ dispatch: gemmDispatch(p), uniforms: uniforms([p.tokens, p.kdim, p.ndim, p.rowsTotal]) }),
  }
}

export { GEMM_BM, GEMM_BN }
