import { grid1d, uniforms, type KernelProgram } from '../../gpu/program.js'
import { softmaxTopkWgsl, softmaxWgsl, topkWgsl } from './softmax-topk.wgsl.js'

const WG = 64

/** Run parameters of the softmax kernel. */
export interface SoftmaxParams {
  readonly tokens: number
  readonly experts: number
}

/** Row softmax program; bindings: logits (T×E), scores (T×E). */
export function softmaxProgram(): KernelProgram<SoftmaxParams> {
  return {
    name: 'softmax',
    cacheKey: `softmax|wg=${WG}`,
    getShaderSource: () => softmaxWgsl({ workgroupSize: WG }),
    getRunData: ({ tokens, experts }) => ({ dispatch: grid1d(tokens / WG), uniforms: uniforms([tokens, experts]) }),
  }
}

/** Run parameters of the top-k kernel. */
export interface TopkParams {
  readonly tokens: number
  readonly experts: number
  readonly k: number
  readonly normalize: boolean
}

/** Top-k program; bindings: scores (T×E), topIdx (T×k i32), topW (T×k f32). */
export function topkProgram(): KernelProgram<TopkParams> {
  return {
    name: 'topk',
    cacheKey: `topk|wg=${WG}`,
    getShaderSource: () => topkWgsl({ workgroupSize: WG }),
    getRunData: ({ tokens, experts, k, normalize }) => ({
      dispatch: grid1d(tokens / WG),
      uniforms: uniforms([tokens, experts, k, normalize ? 1 : 0]),
    }),
  }
}

/** Softmax and top-k in one kernel; bindings: logits (T×E), scores (T×E), topIdx (T×k i32), topW (T×k f32). */
export function softmaxTopkProgram(): KernelProgram<TopkParams> {
  return {
    name: 'softmax-topk',
    cacheKey: `softmax-topk|wg=${WG}`,
    getShaderSource: () => softmaxTopkWgsl({ workgroupSize: WG }),
    getRunData: ({ tokens, experts, k, normalize }) => ({
      dispatch: grid1d(tokens / WG),
      uniforms: uniforms([tokens, experts, k, normalize ? 1 : 0]),
    }),
  }
}
