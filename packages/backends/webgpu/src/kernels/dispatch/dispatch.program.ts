import { grid1d, uniforms, type KernelProgram } from '../../gpu/program.js'
import { offsetsWgsl, scatterWgsl, selectWgsl } from './dispatch.wgsl.js'

/** Keep rule of the select kernel. */
export type SelectMode = 'all' | 'capacity' | 'static'

const MODE: Record<SelectMode, number> = { all: 0, capacity: 1, static: 2 }

/** Run parameters of the select kernel. */
export interface SelectParams {
  readonly tokens: number
  readonly k: number
  readonly experts: number
  readonly mode: SelectMode
  /** Per-expert capacity C (ignored in mode `all`). */
  readonly capacity: number
}

/** Select program; bindings: topIdx, scores, cand (E×T), kept (E×T), counts (E). One workgroup per expert. */
export function selectProgram(): KernelProgram<SelectParams> {
  return {
    name: 'dispatch-select',
    cacheKey: 'dispatch-select',
    getShaderSource: selectWgsl,
    getRunData: ({ tokens, k, experts, mode, capacity }) => ({
      dispatch: [experts, 1, 1],
      uniforms: uniforms([tokens, k, experts, MODE[mode], capacity]),
    }),
  }
}

/** Run parameters of the offsets kernel. */
export interface OffsetsParams {
  readonly experts: number
  readonly isStatic: boolean
  readonly capacity: number
  readonly colsGateUp: number
  readonly colsDown: number
  readonly bm: number
  /** Columns per workgroup of the gate+up GEMM (and of the down GEMM unless `bnDown`). */
  readonly bn: number
  readonly bnDown?: number
}

/** Offsets program; bindings: counts (E), offsets (E+1 i32), args (8 u32, INDIRECT). Single workgroup, E ≤ 256. */
export function offsetsProgram(): KernelProgram<OffsetsParams> {
  return {
    name: 'dispatch-offsets',
    cacheKey: 'dispatch-offsets',
    getShaderSource: offsetsWgsl,
    getRunData: (p) => ({
      dispatch: [1, 1, 1],
      uniforms: uniforms([p.experts, p.isStatic ? 1 : 0, p.capacity, p.colsGateUp, p.colsDown, p.bm, p.bn, p.bnDown ?? p.bn]),
    }),
  }
}

/** Run parameters of the scatter kernel. */
export interface ScatterParams {
  readonly tokens: number
  readonly k: number
  readonly experts: number
  /** Largest group size: max(tokens, capacity). */
  readonly width: number
}

/** Scatter program; bindings: topIdx, topW, offsets, counts, kept, rowToken, rowWeight, tokenRows. */
export function scatterProgram(): KernelProgram<ScatterParams> {
  return {
    name: 'dispatch-scatter',
    cacheKey: 'dispatch-scatter',
    getShaderSource: scatterWgsl,
    getRunData: ({ tokens, k, experts, width }) => ({
      dispatch: grid1d((experts * width) / 256),
      uniforms: uniforms([tokens, k, experts, width]),
    }),
  }
}
