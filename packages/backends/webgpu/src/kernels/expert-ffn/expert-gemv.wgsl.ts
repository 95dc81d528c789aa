import { siluWgsl, teamHeader, teamSumWgsl, type TeamConsts } from '../common/team.wgsl.js'

/** Init-time constants of the decode (GEMV-style) expert kernels. */
export interface ExpertGemvConsts extends TeamConsts {
  /** Weight storage: f32, or f16 packed two per u32. */
  readonly dtype: 'f32' | 'f16'
  /** Rows of a group processed per pass over a weight row (unrolled accumulators). */
  readonly mt: number
}

const range = (n: number) => Array.from({ length: n }, (_, j) => j)

/**
 * Chunks in flight per lane: more when few rows share each weight load (keeps HBM busy).
 * Only on 32-wide subgroups (GPUs): CPU adapters (lavapipe) gain nothing and compile the
 * unrolled code for minutes.
 */
const unrollFor = (c: ExpertGemvConsts) => (!c.subgroups || c.team < 32 ? 1 : c.mt <= 2 ? 4 : c.mt <= 8 ? 2 : 1)

/** WGSL declaring `w<name>` and `fn load<name>(chunk) -> array<vec4<f32>, 2>` (8 weights per chunk). */
function weightDecl(binding: number, name: string, dtype: 'f32' | 'f16'): string {
  return dtype === 'f16'
    ? `@group(0) @binding(${binding}) var<storage, read> w${name}: array<vec4<u32>>;
fn load${name}(c: u32) -> array<vec4<f32>, 2> {
  let p = w${name}[c];
  return array<vec4<f32>, 2>(vec4<f32>(unpack2x16float(p.x), unpack2x16float(p.y)), vec4<f32>(unpack2x16float(p.z), unpack2x16float(p.w)));
}`
    : `@group(0) @binding(${binding}) var<storage, read> w${name}: array<vec4<f32>>;
fn load${name}(c: u32) -> array<vec4<f32>, 2> { return array<vec4<f32>, 2>(w${name}[2u * c], w${name}[2u * c + 1u]); }`
}

/**
 * Decode gate+up: act[r, i] = silu(gate_e[i]·x_r) · (up_e[i]·x_r) for every row r of expert
 * e's group. Workgroup (i-block, e): each team owns one weight row i and streams it once per
 * block of `mt` group rows (weights are read from HBM once per batch while groups are ≤ mt;
 * further blocks hit the caches). Padding rows (token −1) read the zero row `tokens` of x
 * and are computed like real rows. Empty experts exit at once.
 */
export const gemvGateUpWgsl = (c: ExpertGemvConsts): string => {
  const J = range(c.mt)
  const U = unrollFor(c)
  const UU = range(U)
  return /* wgsl */ `${teamHeader(c)}
struct Params { tokens: u32, hc: u32, inter: u32, _a: u32 };
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> rowToken: array<i32>;
@group(0) @binding(2) var<storage, read> offsets: array<i32>;
${weightDecl(3, 'Gate', c.dtype)}
${weightDecl(4, 'Up', c.dtype)}
@group(0) @binding(5) var<storage, read_write> act: array<f32>;
@group(0) @binding(6) var<uniform> params: Params;
${teamSumWgsl(c)}
${siluWgsl}
var<workgroup> groupStart: u32;
var<workgroup> groupRows: u32;
@compute @workgroup_size(${c.team * c.teams})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let e = wid.y;
  if (lid == 0u) { groupStart = u32(offsets[e]); groupRows = u32(offsets[e + 1u] - offsets[e]); }
  let n = workgroupUniformLoad(&groupRows);
  let start = workgroupUniformLoad(&groupStart);
  if (n == 0u) { return; }
  let lane = lid % ${c.team}u;
  let iRaw = wid.x * ${c.teams}u + lid / ${c.team}u;
  let valid = iRaw < params.inter;
  let i = min(iRaw, params.inter - 1u);
  let hc = params.hc;
  let h4 = hc * 2u;
  let wrow = (e * params.inter + i) * hc;
  for (var tb = 0u; tb < n; tb = tb + ${c.mt}u) {
${J.map((j) => `    let r${j} = start + min(tb + ${j}u, n - 1u);
    let tk${j} = rowToken[r${j}];
    let xo${j} = select(params.tokens, u32(tk${j}), tk${j} >= 0 && tb + ${j}u < n) * h4;
    var g${j} = 0.0;
    var u${j} = 0.0;`).join('\n')}
    var ch = lane;
    // ${U}-way unrolled: all weight loads of the step are issued before the first use
    for (; ch + ${(U - 1) * c.team}u < hc; ch = ch + ${U * c.team}u) {
${UU.map((q) => `      let wg${q} = loadGate(wrow + ch + ${q * c.team}u);
      let wu${q} = loadUp(wrow + ch + ${q * c.team}u);`).join('\n')}
${UU.map((q) => J.map((j) => `      { let xa = x[xo${j} + 2u * (ch + ${q * c.team}u)]; let xb = x[xo${j} + 2u * (ch + ${q * c.team}u) + 1u];
        g${j} = g${j} + dot(wg${q}[0], xa) + dot(wg${q}[1], xb);
        u${j} = u${j} + dot(wu${q}[0], xa) + dot(wu${q}[1], xb); }`).join('\n')).join('\n')}
    }
    for (; ch < hc; ch = ch + ${c.team}u) {
      let wg = loadGate(wrow + ch);
      let wu = loadUp(wrow + ch);
${J.map((j) => `      { let xa = x[xo${j} + 2u * ch]; let xb = x[xo${j} + 2u * ch + 1u];
        g${j} = g${j} + dot(wg[0], xa) + dot(wg[1], xb);
        u${j} = u${j} + dot(wu[0], xa) + dot(wu[1], xb); }`).join('\n')}
    }
${J.map((j) => `    { let gs = teamSum(g${j}, lid); let us = teamSum(u${j}, lid);
      if (lane == 0u && valid && tb + ${j}u < n) { act[(start + tb + ${j}u) * params.inter + i] = silu(gs) * us; } }`).join('\n')}
  }
}`
}

/**
 * Decode down projection: y[r, h] = down_e[h]·act_r for every row r of expert e's group.
 * Same layout as the gate+up kernel, over K = intermediate.
 */
export const gemvDownWgsl = (c: ExpertGemvConsts): string => {
  const J = range(c.mt)
  const U = unrollFor(c)
  const UU = range(U)
  return /* wgsl */ `${teamHeader(c)}
struct Params { hidden: u32, ic: u32, rowsTotal: u32, _a: u32 };
@group(0) @binding(0) var<storage, read> act: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> offsets: array<i32>;
${weightDecl(2, 'Down', c.dtype)}
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;
${teamSumWgsl(c)}
var<workgroup> groupStart: u32;
var<workgroup> groupRows: u32;
@compute @workgroup_size(${c.team * c.teams})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let e = wid.y;
  if (lid == 0u) { groupStart = u32(offsets[e]); groupRows = u32(offsets[e + 1u] - offsets[e]); }
  let n = workgroupUniformLoad(&groupRows);
  let start = workgroupUniformLoad(&groupStart);
  if (n == 0u) { return; }
  let lane = lid % ${c.team}u;
  let hRaw = wid.x * ${c.teams}u + lid / ${c.team}u;
  let valid = hRaw < params.hidden;
  let h = min(hRaw, params.hidden - 1u);
  let ic = params.ic;
  let i4 = ic * 2u;
  let wrow = (e * params.hidden + h) * ic;
  for (var tb = 0u; tb < n; tb = tb + ${c.mt}u) {
${J.map((j) => `    let ao${j} = (start + min(tb + ${j}u, n - 1u)) * i4;
    var d${j} = 0.0;`).join('\n')}
    var ch = lane;
    for (; ch + ${(U - 1) * c.team}u < ic; ch = ch + ${U * c.team}u) {
${UU.map((q) => `      let wd${q} = loadDown(wrow + ch + ${q * c.team}u);`).join('\n')}
${UU.map((q) => J.map((j) => `      d${j} = d${j} + dot(wd${q}[0], act[ao${j} + 2u * (ch + ${q * c.team}u)]) + dot(wd${q}[1], act[ao${j} + 2u * (ch + ${q * c.team}u) + 1u]);`).join('\n')).join('\n')}
    }
    for (; ch < ic; ch = ch + ${c.team}u) {
      let wd = loadDown(wrow + ch);
${J.map((j) => `      d${j} = d${j} + dot(wd[0], act[ao${j} + 2u * ch]) + dot(wd[1], act[ao${j} + 2u * ch + 1u]);`).join('\n')}
    }
${J.map((j) => `    { let s = teamSum(d${j}, lid);
      if (lane == 0u && valid && tb + ${j}u < n) { y[(start + tb + ${j}u) * params.hidden + h] = s; } }`).join('\n')}
  }
}`
}
