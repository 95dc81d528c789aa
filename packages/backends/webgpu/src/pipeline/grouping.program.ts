/** Program descriptors of the grouping, output-norm and telemetry kernels (see grouping.wgsl.ts). */
import { grid1d, uniforms, type KernelProgram } from '../gpu/program.js'
import { groupScatterWgsl, groupSelectWgsl, normPartialsWgsl, telemetryWgsl } from './grouping.wgsl.js'

/** Run parameters of the group-select kernel. */
export interface GroupSelectParams {
  readonly tokens: number
  readonly slots: number
  readonly experts: number
  readonly padded: boolean
  /** Rows per segment when padded. */
  readonly cap: number
  /** Source segments (1, or the devices when padding per source device). */
  readonly segments: number
  /** Slot-major priority (all first choices before any second choice). */
  readonly choice: boolean
  readonly srcBase: number
  /** Positions per expert in `kept`: tokens·slots (exact) or segments·cap (padded). */
  readonly width: number
  /** Word of the dispatcher's STAT_DROPPED in `counters`. */
  readonly statBase: number
}

/** Group-select; bindings: ids (T×S), aux, kept (E×W), counts (E), counters. One workgroup per expert. */
export function groupSelectProgram(): KernelProgram<GroupSelectParams> {
  return {
    name: 'group-select',
    cacheKey: 'group-select',
    getShaderSource: groupSelectWgsl,
    getRunData: (p) => ({
      dispatch: [p.experts, 1, 1],
      uniforms: uniforms([p.tokens, p.slots, p.experts, p.padded ? 1 : 0, p.cap, p.segments, p.choice ? 1 : 0, p.srcBase, p.width, p.statBase]),
    }),
  }
}

/** Run parameters of the group-scatter kernel. */
export interface GroupScatterParams {
  readonly slots: number
  readonly experts: number
  readonly width: number
}

/** Group-scatter; bindings: w (T×S), offsets, kept, rowToken, rowWeight, tokenRows (T×S). */
export function groupScatterProgram(): KernelProgram<GroupScatterParams> {
  return {
    name: 'group-scatter',
    cacheKey: 'group-scatter',
    getShaderSource: groupScatterWgsl,
    getRunData: ({ slots, experts, width }) => ({ dispatch: grid1d((experts * width) / 256), uniforms: uniforms([slots, experts, width]) }),
  }
}

/** Workgroups of the output-norm kernel for `n4` vec4 elements. */
export const normGroups = (n4: number): number => Math.max(1, Math.min(256, Math.ceil(n4 / 4096)))

/** Output-norm partial sums; bindings: out (T×H), counters (partials at `base`). */
export function normPartialsProgram(): KernelProgram<{ n4: number; base: number }> {
  return {
    name: 'output-norm',
    cacheKey: 'output-norm',
    getShaderSource: normPartialsWgsl,
    getRunData: ({ n4, base }) => ({ dispatch: [normGroups(n4), 1, 1], uniforms: uniforms([n4, normGroups(n4), base]) }),
  }
}

/** Run parameters of the telemetry kernel. */
export interface TelemetryParams {
  readonly tokens: number
  readonly k: number
  readonly slots: number
  readonly experts: number
  readonly srcBase: number
  readonly teleBase: number
  readonly normBase: number
  readonly normGroups: number
  readonly devices: number
  /** Count crossing rows once per pair instead of once per destination device. */
  readonly perPair?: boolean
}

/** Telemetry counts; bindings: origIds, origW, ids, w, tokenRows, counts, aux, counters. One workgroup. */
export function telemetryProgram(): KernelProgram<TelemetryParams> {
  return {
    name: 'telemetry',
    cacheKey: 'telemetry',
    getShaderSource: telemetryWgsl,
    getRunData: (p) => ({
      dispatch: [1, 1, 1],
      uniforms: uniforms([p.tokens, p.k, p.slots, p.experts, p.srcBase, p.teleBase, p.normBase, p.normGroups, p.devices, p.perPair ? 1 : 0]),
    }),
  }
}
