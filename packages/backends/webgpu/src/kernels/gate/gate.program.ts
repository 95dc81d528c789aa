import { grid1d, uniforms, type KernelProgram } from '../../gpu/program.js'
import { teamKey, type TeamConsts } from '../common/team.wgsl.js'
import { gateWgsl } from './gate.wgsl.js'

/** Run parameters of the gate kernel. */
export interface GateParams {
  readonly tokens: number
  readonly experts: number
  readonly hidden: number
}

/** Outputs (T·E) up to which the gate gives each output a whole workgroup (`split`). */
export const GATE_SPLIT_MAX_OUTPUTS = 2048

/**
 * Gate matmul program; bindings: x (T×H f32), router (E×H f32), logits (T×E f32). `split`
 * (default: T·E ≤ {@link GATE_SPLIT_MAX_OUTPUTS}, decided by the caller) runs one workgroup per output.
 */
export function gateProgram(team: TeamConsts, split = false): KernelProgram<GateParams> {
  return {
    name: 'gate',
    cacheKey: `gate|${teamKey(team)}|${split ? 'split' : 'teams'}`,
    getShaderSource: () => gateWgsl(team, split),
    getRunData: ({ tokens, experts, hidden }) => ({
      dispatch: grid1d(split ? tokens * experts : (tokens * experts) / team.teams),
      uniforms: uniforms([tokens, experts, hidden / 4]),
    }),
  }
}
