import { ErrorCodes, MoeError } from '@moe-route/core'
import { grid1d, uniforms, type KernelProgram } from '../../gpu/program.js'
import { teamKey, type TeamConsts } from '../common/team.wgsl.js'
import { gateTileKey, gateTileProblem, gateTiledWgsl, type GateTile } from './gate-tiled.wgsl.js'
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

/**
 * The tiled gate program (large batches): the same bindings and uniforms as {@link gateProgram},
 * a workgroup per `tile.bt` tokens × `tile.be` experts. The tile is not checked here: see
 * `gateTileProblem`.
 */
export function gateTiledProgram(tile: GateTile): KernelProgram<GateParams> {
  return {
    name: 'gate',
    cacheKey: `gate|tiled|${gateTileKey(tile)}`,
    getShaderSource: () => gateTiledWgsl(tile),
    getRunData: ({ tokens, experts, hidden }) => ({
      dispatch: grid1d(Math.ceil(tokens / tile.bt) * Math.ceil(experts / tile.be)),
      uniforms: uniforms([tokens, experts, hidden / 4]),
    }),
  }
}

/** One row of a tiled-gate plan table: the tile for E ≤ `maxExperts` from T·E ≥ `minOutputs`. */
export interface GateTilePlan {
  readonly maxExperts: number
  readonly minOutputs: number
  readonly tile: GateTile
}

/**
 * Outputs (T·E) from which the default plans run the tiled gate for E ≤ 32 (Mixtral E 8 from
 * T = 2048). Measured on an H100 (`bench/gate.bench.ts`, `bench/results/staged2-h100/gate/`):
 * Mixtral T = 1024 teams 0.018 ms (the tiled grid is too small to win), T = 2048 tiled 0.032 vs
 * teams 0.034, T = 4096 0.054 vs 0.069. The E ≤ 16 / ≤ 32 classes share it unmeasured (no shape
 * of ours has them). Wider E starts later: {@link GATE_TILED_MIN_OUTPUTS_WIDE}.
 */
export const GATE_TILED_MIN_OUTPUTS = 16384

/**
 * Outputs from which E > 32 runs the tiled gate (OLMoE E 64 from T = 1536, Qwen1.5-MoE E 60
 * from T = 1639). H100: E 64 at T = 1024 teams 0.055 ms vs the 16×64 tile 0.062 (the tile has a
 * floor of ~0.06 ms: 64 workgroups walk all of H), T = 2048 0.105 vs 0.062, T = 4096 0.235 vs
 * 0.090; E 60 the same within 0.01 ms.
 */
export const GATE_TILED_MIN_OUTPUTS_WIDE = 98304

/**
 * Tiles by expert count (the smallest `maxExperts` class that holds E) and batch (the plan of
 * that class with the largest `minOutputs` ≤ T·E). Every tile has 256 invocations and at most
 * 13.5 KiB of workgroup memory. Small tiles with split K (`ks`), so more workgroups share the
 * GPU. Expert tiles are E rounded up to 8/16/32 (E ≤ 32) or 64; E 60 runs one 64-wide tile with
 * 4 idle columns. Of 13 candidate tiles on the H100 the 16×64 one (ks 2) was fastest or within
 * 2% at E 64 (T 2048 / 4096: 0.062 / 0.090 ms; 32×64 0.075 / 0.091), within 10% at E 60, T 4096.
 */
export const DEFAULT_GATE_TILES: readonly GateTilePlan[] = [
  { maxExperts: 8, minOutputs: GATE_TILED_MIN_OUTPUTS, tile: { bt: 16, be: 8, tm: 2, tn: 2, ks: 8, bk4: 32 } },
  { maxExperts: 16, minOutputs: GATE_TILED_MIN_OUTPUTS, tile: { bt: 16, be: 16, tm: 2, tn: 2, ks: 4, bk4: 16 } },
  { maxExperts: 32, minOutputs: GATE_TILED_MIN_OUTPUTS, tile: { bt: 16, be: 32, tm: 2, tn: 2, ks: 2, bk4: 8 } },
  { maxExperts: Infinity, minOutputs: GATE_TILED_MIN_OUTPUTS_WIDE, tile: { bt: 16, be: 64, tm: 2, tn: 4, ks: 2, bk4: 8 } },
]

/**
 * The tile of `plans` for a batch of `tokens` × `experts` outputs, or null (the team kernels
 * run): among the plans of the smallest `maxExperts` ≥ E, the one with the largest
 * `minOutputs` ≤ T·E.
 */
export function gateTileFor(tokens: number, experts: number, plans: readonly GateTilePlan[] = DEFAULT_GATE_TILES): GateTile | null {
  let cls = Infinity
  for (const p of plans) if (experts <= p.maxExperts && p.maxExperts < cls) cls = p.maxExperts
  let best: GateTilePlan | null = null
  for (const p of plans) {
    if (p.maxExperts !== cls || tokens * experts < p.minOutputs) continue
    if (!best || p.minOutputs > best.minOutputs) best = p
  }
  return best?.tile ?? null
}

/**
 * The gate program for a batch: the tiled kernel where `plans` have a tile for it (default
 * {@link DEFAULT_GATE_TILES}; `'off'`: never), else a workgroup per output up to
 * {@link GATE_SPLIT_MAX_OUTPUTS} outputs (decode), else a team per output. All give the same
 * outputs up to f32 summation order. A tile that is malformed or exceeds `limits` (default:
 * every WebGPU device's, 256 invocations and 16 KiB) throws `MOE_ROUTE_ERR_INPUT_INVALID`.
 */
export function gateProgramFor(
  team: TeamConsts,
  tokens: number,
  experts: number,
  plans: readonly GateTilePlan[] | 'off' = DEFAULT_GATE_TILES,
  limits: { maxInvocations?: number; maxWgBytes?: number } = {},
): KernelProgram<GateParams> {
  const tile = plans === 'off' ? null : gateTileFor(tokens, experts, plans)
  if (!tile) return gateProgram(team, tokens * experts <= GATE_SPLIT_MAX_OUTPUTS)
  const why = gateTileProblem(tile, limits)
  if (why) throw new MoeError(ErrorCodes.INPUT_INVALID, `${why} (gate at T ${tokens}, E ${experts})`, { plugin: 'webgpu' })
  return gateTiledProgram(tile)
}
