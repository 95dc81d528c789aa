import { grid1d, uniforms, type KernelProgram } from '../../gpu/program.js'
import { combineWgsl } from './combine.wgsl.js'

/** Run parameters of the combine kernel. */
export interface CombineParams {
  readonly tokens: number
  readonly hidden: number
  /** Row slots per token in tokenRows. */
  readonly slots: number
}

/** Combine program; bindings: y (R×H), rowWeight (R), tokenRows (T×slots, row+1), out (T×H). */
export function combineProgram(): KernelProgram<CombineParams> {
  return {
    name: 'combine',
    cacheKey: 'combine',
    getShaderSource: combineWgsl,
    getRunData: ({ tokens, hidden, slots }) => ({
      dispatch: grid1d((tokens * hidden) / 4 / 256),
      uniforms: uniforms([tokens, hidden / 4, slots]),
    }),
  }
}
