import { grid1d, uniforms, type KernelProgram } from '../../gpu/program.js'
import { teamKey, type TeamConsts } from '../common/team.wgsl.js'
import { gateWgsl } from './gate.wgsl.js'

/** Run parameters of the gate kernel. */
export interface GateParams {
  readonly tokens: number
  readonly experts: number
  readonly hidden: number
}

/** Gate matmul program; bindings: x (T×H f32), router (E×H f32), logits (T×E f32). */
export function gateProgram(team: TeamConsts): KernelProgram<GateParams> {
  return {
    name: 'gate',
    cacheKey: `gate|${teamKey(team)}`,
    getShaderSource: () => gateWgsl(team),
    getRunData: ({ tokens, experts, hidden }) => ({
      dispatch: grid1d((tokens * experts) / team.teams),
      uniforms: uniforms([tokens, experts, hidden / 4]),
    }),
  }
}
