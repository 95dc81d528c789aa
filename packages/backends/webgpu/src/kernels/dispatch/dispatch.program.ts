import { uniforms, type KernelProgram } from '../../gpu/program.js'
import { offsetsWgsl } from './dispatch.wgsl.js'

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
