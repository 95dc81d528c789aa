import { grid1d, uniforms, type KernelProgram } from '../../gpu/program.js'
import { softmaxTopkSubgroupWgsl, softmaxTopkWgsl, softmaxWgsl, topkWgsl } from './softmax-topk.wgsl.js'

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

/** Tokens up to which the layer runs softmax-topk with one subgroup per token. */
export const SOFTMAX_TOPK_SUBGROUP_MAX_TOKENS = 256

/**
 * Softmax and top-k with one subgroup of `subgroupSize` lanes per token (the same results
 * as {@link softmaxTopkProgram}); bindings as that program.
 */
export function softmaxTopkSubgroupProgram(subgroupSize: number): KernelProgram<TopkParams> {
  const wg = Math.max(64, subgroupSize)
  return {
    name: 'softmax-topk',
    cacheKey: `softmax-topk-subgroup|wg=${wg}|sg=${subgroupSize}`,
    getShaderSource: () => softmaxTopkSubgroupWgsl({ workgroupSize: wg, subgroupSize }),
    getRunData: ({ tokens, experts, k, normalize }) => ({
      dispatch: grid1d((tokens * subgroupSize) / wg),
      uniforms: uniforms([tokens, experts, k, normalize ? 1 : 0]),
    }),
  }
}
