import { linearWorkgroup, teamHeader, teamSumWgsl, type TeamConsts } from '../common/team.wgsl.js'

/**
 * Gate matmul: logits[t, e] = x[t, :] · router[e, :]. One team per (token, expert) output;
 * lanes stride over vec4 columns of H, then reduce. With `split` (few outputs: decode) the
 * whole workgroup takes one output — its teams share H — and the team sums are added in
 * workgroup memory: a Mixtral token's 8 outputs on one 256-lane workgroup took 22 µs on the
 * H200, 32 dependent 16-byte loads per lane.
 */
export const gateWgsl = (team: TeamConsts, split = false): string => split ? gateSplitWgsl(team) : /* wgsl */ `${gateHeader(team)}
@compute @workgroup_size(${team.team * team.teams})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  ${linearWorkgroup}
  let total = params.tokens * params.experts;
  let outIdx = wgLinear * ${team.teams}u + lid / ${team.team}u;
  let lane = lid % ${team.team}u;
  let o = min(outIdx, total - 1u);
  let t = o / params.experts;
  let e = o % params.experts;
  var acc = 0.0;
  for (var c = lane; c < params.h4; c = c + ${team.team}u) {
    acc = acc + dot(x[t * params.h4 + c], router[e * params.h4 + c]);
  }
  let s = teamSum(acc, lid);
  if (lane == 0u && outIdx < total) { logits[o] = s; }
}`

/** Bindings and the team reduction shared by both gate kernels. */
const gateHeader = (team: TeamConsts): string => `${teamHeader(team)}
struct Params { tokens: u32, experts: u32, h4: u32, _pad: u32 };
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> router: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> logits: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;
${teamSumWgsl(team)}`

const gateSplitWgsl = (team: TeamConsts): string => /* wgsl */ `${gateHeader(team)}
var<workgroup> gpart: array<f32, ${team.teams}>;
@compute @workgroup_size(${team.team * team.teams})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  ${linearWorkgroup}
  let total = params.tokens * params.experts;
  let o = min(wgLinear, total - 1u);
  let t = o / params.experts;
  let e = o % params.experts;
  var acc = 0.0;
  for (var c = lid; c < params.h4; c = c + ${team.team * team.teams}u) {
    acc = acc + dot(x[t * params.h4 + c], router[e * params.h4 + c]);
  }
  let s = teamSum(acc, lid);
  if (lid % ${team.team}u == 0u) { gpart[lid / ${team.team}u] = s; }
  workgroupBarrier();
  if (lid == 0u && wgLinear < total) {
    var sum = 0.0;
    for (var i = 0u; i < ${team.teams}u; i = i + 1u) { sum = sum + gpart[i]; }
    logits[o] = sum;
  }
}`
