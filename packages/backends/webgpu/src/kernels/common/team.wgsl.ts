/**
 * Shared WGSL pieces: a "team" is a group of `team` invocations that reduce one dot product.
 * With `subgroups` and a fixed subgroup size, a team is one subgroup and reduces with
 * `subgroupAdd`; without, it reduces through workgroup memory (barriers, same result).
 */

/** How a kernel reduces across a team. */
export interface TeamConsts {
  /** Invocations per team (the subgroup size when `subgroups`). */
  readonly team: number
  /** Teams per workgroup. */
  readonly teams: number
  /** Use `subgroupAdd` (requires the `subgroups` feature and subgroup size == team). */
  readonly subgroups: boolean
}

/** `enable` directives for the header of a kernel using {@link teamSumWgsl}. */
export const teamHeader = ({ subgroups }: TeamConsts): string =>
  subgroups ? 'enable subgroups;\ndiagnostic(off, subgroup_uniformity);\n' : ''

/**
 * `fn teamSum(v: f32, lid: u32) -> f32`: the sum of `v` over the caller's team, on every
 * lane. Must be called in workgroup-uniform control flow (the shared-memory variant has barriers).
 */
export const teamSumWgsl = ({ team, teams, subgroups }: TeamConsts): string =>
  subgroups
    ? `fn teamSum(v: f32, lid: u32) -> f32 { return subgroupAdd(v); }`
    : `var<workgroup> red: array<f32, ${team * teams}>;
fn teamSum(v: f32, lid: u32) -> f32 {
  let base = (lid / ${team}u) * ${team}u;
  red[lid] = v;
  workgroupBarrier();
  for (var s = ${team / 2}u; s > 0u; s = s >> 1u) {
    if (lid - base < s) { red[lid] = red[lid] + red[lid + s]; }
    workgroupBarrier();
  }
  let r = red[base];
  workgroupBarrier();
  return r;
}`

/** Team layout for a device: one subgroup per team when possible, else 32 lanes over workgroup memory. */
export function teamFor(features: { subgroups: boolean; subgroupSize: number | null }, teams: number, preferSubgroups = true): TeamConsts {
  if (preferSubgroups && features.subgroups && features.subgroupSize && features.subgroupSize * teams <= 1024) {
    return { team: features.subgroupSize, teams, subgroups: true }
  }
  return { team: 32, teams, subgroups: false }
}

/** Short cache-key fragment of a team layout. */
export const teamKey = (t: TeamConsts): string => `team=${t.team}x${t.teams}${t.subgroups ? 'sg' : 'wg'}`

/** WGSL for the linear workgroup id of a grid spread by `grid1d`. */
export const linearWorkgroup = 'let wgLinear = wid.y * nwg.x + wid.x;'

/** WGSL: silu. */
export const siluWgsl = 'fn silu(v: f32) -> f32 { return v / (1.0 + exp(-v)); }'
