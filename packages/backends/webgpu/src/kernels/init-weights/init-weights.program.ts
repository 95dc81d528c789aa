import { grid1d, uniforms, type KernelProgram } from '../../gpu/program.js'
import { initWeightsWgsl } from './init-weights.wgsl.js'

/** Run parameters of the weight generator. */
export interface InitWeightsParams {
  /** Number of values (even). */
  readonly count: number
  readonly seed: number
  readonly std: number
  /** First value of the stream to make (even; default 0): a slice made on its own. */
  readonly first?: number
}

/** Seeded normal weight generator; binding: the weight buffer. */
export function initWeightsProgram(dtype: 'f32' | 'f16'): KernelProgram<InitWeightsParams> {
  return {
    name: 'init-weights',
    cacheKey: `init-weights|${dtype}`,
    getShaderSource: () => initWeightsWgsl(dtype),
    getRunData: ({ count, seed, std, first }) => ({
      dispatch: grid1d(count / 2 / 256),
      uniforms: uniforms([count / 2, seed, { f32: std }, (first ?? 0) / 2]),
    }),
  }
}
