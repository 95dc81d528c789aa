import { siluWgsl } from '../common/team.wgsl.js'

/**
 * Init-time constants of the decode (GEMV-style) expert kernels.
 *
 * Layout ("column slices", weight-stationary): a workgroup owns `rows` consecutive weight rows
 * of one expert; invocation `lid` owns the 8-wide K chunks lid, lid+wg, … of every one of
 * those rows and loads them into registers once, at the start (all loads in flight together),
 * so one load instruction of the workgroup reads wg·16 contiguous bytes of a row and every
 * weight is read from memory exactly once per batch whatever the group size; the group's
 * rows then stream past in blocks of `mt`, each activation chunk read once for all `rows`. Each (weight row, group row) dot product is reduced across the
 * workgroup at the end of a block: subgroupAdd then one value per subgroup in workgroup
 * memory, or a shared-memory tree without subgroups.
 * On an H100 (Dawn/Vulkan) a single token streams gate+up at 2.8–2.9 TB/s and down at
 * 2.6 TB/s with rows 4, wg 256 (bench/gpu-probe.ts), against 3.05 TB/s for a pure read.
 */
export interface ExpertGemvConsts {
  /** Weight storage: f32, or f16 packed two per u32. */
  readonly dtype: 'f32' | 'f16'
  /** Group rows (tokens) per block: accumulators per invocation are rows·mt (·2 for gate+up). */
  readonly mt: number
  /** Weight rows per workgroup. */
  readonly rows: number
  /** Invocations per workgroup (a multiple of the subgroup size when `subgroupSize` is set). */
  readonly wg: number
  /** Fixed subgroup size to reduce with `subgroupAdd`, or null for workgroup-memory reductions. */
  readonly subgroupSize: number | null
  /** 8-wide chunks along K (H/8 for gate+up, I/8 for down): a per-layer constant, so loops unroll. */
  readonly kc: number
}

const range = (n: number) => Array.from({ length: n }, (_, j) => j)

/**
 * WGSL declaring `w<name>` and `fn load<name>(chunk) -> array<vec4<f32>, 2>` (8 weights per chunk),
 * split as `raw<name>(chunk)` (the stored words: `vec4<u32>` of packed f16, or two `vec4<f32>`) and
 * `unpack<name>(raw)` for kernels that keep loads in flight before converting them.
 */
export function weightDecl(binding: number, name: string, dtype: 'f32' | 'f16'): string {
  return dtype === 'f16'
    ? `@group(0) @binding(${binding}) var<storage, read> w${name}: array<vec4<u32>>;
fn raw${name}(c: u32) -> vec4<u32> { return w${name}[c]; }
fn unpack${name}(p: vec4<u32>) -> array<vec4<f32>, 2> {
  return array<vec4<f32>, 2>(vec4<f32>(unpack2x16float(p.x), unpack2x16float(p.y)), vec4<f32>(unpack2x16float(p.z), unpack2x16float(p.w)));
}
fn load${name}(c: u32) -> array<vec4<f32>, 2> { return unpack${name}(w${name}[c]); }`
    : `@group(0) @binding(${binding}) var<storage, read> w${name}: array<vec4<f32>>;
fn raw${name}(c: u32) -> array<vec4<f32>, 2> { return array<vec4<f32>, 2>(w${name}[2u * c], w${name}[2u * c + 1u]); }
fn unpack${name}(p: array<vec4<f32>, 2>) -> array<vec4<f32>, 2> { return p; }
fn load${name}(c: u32) -> array<vec4<f32>, 2> { return raw${name}(c); }`
}

/**
 * WGSL storing the workgroup partial sums of `values` (per-invocation sums, nv of them) into
 * `part`: with subgroups one value per subgroup (`part[s·nv + i]`, summed by {@link sumOf}),
 * else a workgroup-memory tree (`part[i]` is the total). Ends with a barrier; uniform control flow.
 */
function partialStores(c: ExpertGemvConsts, values: string[]): string {
  const nv = values.length
  if (c.subgroupSize) {
    return `${values.map((v, i) => `    { let s = subgroupAdd(${v}); if (sgl == 0u) { part[(lid / ${c.subgroupSize}u) * ${nv}u + ${i}u] = s; } }`).join('\n')}
    workgroupBarrier();`
  }
  // Few barriers: lavapipe (llvmpipe) splits a compute shader into a coroutine at every
  // barrier, and a tree per value (hundreds of barriers) took minutes to compile. Each pass
  // stores up to `per` values of every invocation (one barrier), then each value is summed over
  // the workgroup by one invocation (one barrier).
  const per = noSubgroupValuesPerPass(c.wg, nv)
  const passes = range(Math.ceil(nv / per))
  return passes
    .map((p) => {
      const vs = values.slice(p * per, (p + 1) * per)
      return `${vs.map((v, i) => `    red[${i * c.wg}u + lid] = ${v};`).join('\n')}
    workgroupBarrier();
    for (var v = lid; v < ${vs.length}u; v = v + ${c.wg}u) {
      var s = 0.0;
      for (var j = 0u; j < ${c.wg}u; j = j + 1u) { s = s + red[v * ${c.wg}u + j]; }
      part[${p * per}u + v] = s;
    }
    workgroupBarrier();`
    })
    .join('\n')
}

/** Values per reduction pass without subgroups: `red` (per·wg f32) and `part` (nv f32) within 16 KiB of workgroup memory. */
const noSubgroupValuesPerPass = (wg: number, nv: number): number => Math.max(1, Math.min(nv, Math.floor((16384 - 4 * nv - 64) / (4 * wg))))

function header(c: ExpertGemvConsts, nv: number): string {
  const S = c.subgroupSize ? c.wg / c.subgroupSize : 1
  return `${c.subgroupSize ? 'enable subgroups;\ndiagnostic(off, subgroup_uniformity);\n' : ''}
var<workgroup> part: array<f32, ${S * nv}>;
${c.subgroupSize ? '' : `var<workgroup> red: array<f32, ${c.wg * noSubgroupValuesPerPass(c.wg, nv)}>;`}
var<workgroup> groupStart: u32;
var<workgroup> groupRows: u32;`
}

/**
 * Entry: workgroup row wid.y is a slot of the non-empty expert list the offsets kernel (or the
 * host) writes at offsets[E+1 ..]; slots past the list and empty groups exit at once.
 */
const entry = (c: ExpertGemvConsts) =>
  `var<workgroup> groupExpert: u32;
@compute @workgroup_size(${c.wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32${c.subgroupSize ? ', @builtin(subgroup_invocation_id) sgl: u32' : ''}) {
${activeExpertPrologue}
  // the expert's weights: its slot (an expert store's device slot, else its own index)
  let ws = u32(offsets[2u * params.experts + 1u + e]);`

/**
 * WGSL prologue of the decode kernels (f16/f32 and int8): workgroup row wid.y reads slot
 * wid.y of the non-empty expert list at offsets[E+1 ..] and binds `e`, `start` and `n` (its
 * group); slots past the list (−1) and empty groups return. Needs the workgroup variables
 * groupExpert, groupStart, groupRows, `offsets` and `params.experts`.
 */
export const activeExpertPrologue = `  if (lid == 0u) {
    let ae = offsets[params.experts + 1u + wid.y];
    let ee = u32(max(ae, 0));
    groupExpert = ee;
    groupStart = u32(offsets[ee]);
    groupRows = select(0u, u32(offsets[ee + 1u] - offsets[ee]), ae >= 0);
  }
  let n = workgroupUniformLoad(&groupRows);
  let start = workgroupUniformLoad(&groupStart);
  let e = workgroupUniformLoad(&groupExpert);
  if (n == 0u) { return; }`

/** This invocation's K chunks: ch_i = lid + i·wg for i < iters (clamped in range; `ok_i` false past K). */
const chunks = (c: ExpertGemvConsts) => {
  const iters = Math.ceil(c.kc / c.wg)
  const guard = c.kc % c.wg !== 0
  const I = range(iters)
  return {
    I,
    decl: I.map((i) => (guard ? `  let ok${i} = lid + ${i * c.wg}u < ${c.kc}u;\n  let ch${i} = min(lid + ${i * c.wg}u, ${c.kc - 1}u);` : `  let ch${i} = lid + ${i * c.wg}u;`)).join('\n'),
    /** x chunk load, zero past K (so clamped duplicate weights add nothing). */
    x: (arr: string, off: string, i: number, half: 0 | 1) => {
      const load = `${arr}[${off} + 2u * ch${i}${half ? ' + 1u' : ''}]`
      return guard ? `select(vec4<f32>(0.0), ${load}, ok${i})` : load
    },
  }
}

/**
 * Decode gate+up: act[r, i] = silu(gate_e[i]·x_r) · (up_e[i]·x_r) for every row r of expert
 * e's group. Grid (I / rows, expert slots). Padding rows (token −1) read the zero row `tokens` of x.
 * Empty experts exit at once.
 */
export const gemvGateUpWgsl = (c: ExpertGemvConsts): string => {
  const R = range(c.rows)
  const J = range(c.mt)
  const values = R.flatMap((r) => J.flatMap((j) => [`g${r}_${j}`, `u${r}_${j}`]))
  const K = chunks(c)
  return /* wgsl */ `${header(c, values.length)}
struct Params { tokens: u32, hc: u32, inter: u32, experts: u32 };
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> rowToken: array<i32>;
@group(0) @binding(2) var<storage, read> offsets: array<i32>;
${weightDecl(3, 'Gate', c.dtype)}
${weightDecl(4, 'Up', c.dtype)}
@group(0) @binding(5) var<storage, read_write> act: array<f32>;
@group(0) @binding(6) var<uniform> params: Params;
${siluWgsl}
${entry(c)}
  let hc = params.hc;
  let n0 = wid.x * ${c.rows}u;
${R.map((r) => `  let wr${r} = (ws * params.inter + min(n0 + ${r}u, params.inter - 1u)) * hc;`).join('\n')}
  // weight-stationary: this invocation's slice of the workgroup's rows, loaded once
${K.decl}
${R.map((r) => K.I.map((i) => `  let pg${r}_${i} = loadGate(wr${r} + ch${i});\n  let pu${r}_${i} = loadUp(wr${r} + ch${i});`).join('\n')).join('\n')}
  for (var tb = 0u; tb < n; tb = tb + ${c.mt}u) {
${J.map((j) => `    let tk${j} = rowToken[start + min(tb + ${j}u, n - 1u)];
    let xo${j} = select(params.tokens, u32(tk${j}), tk${j} >= 0 && tb + ${j}u < n) * hc * 2u;`).join('\n')}
${values.map((v) => `    var ${v} = 0.0;`).join('\n')}
${K.I.map((i) => J.map((j) => `    { let xa = ${K.x('x', `xo${j}`, i, 0)}; let xb = ${K.x('x', `xo${j}`, i, 1)};
${R.map((r) => `      g${r}_${j} = g${r}_${j} + dot(pg${r}_${i}[0], xa) + dot(pg${r}_${i}[1], xb);
      u${r}_${j} = u${r}_${j} + dot(pu${r}_${i}[0], xa) + dot(pu${r}_${i}[1], xb);`).join('\n')} }`).join('\n')).join('\n')}
${partialStores(c, values)}
    if (lid < ${c.rows * c.mt}u) {
      let r = lid / ${c.mt}u;
      let j = lid % ${c.mt}u;
      let g = ${sumOf(c, values.length, `2u * lid`)};
      let u = ${sumOf(c, values.length, `2u * lid + 1u`)};
      if (n0 + r < params.inter && tb + j < n) { act[(start + tb + j) * params.inter + n0 + r] = silu(g) * u; }
    }
    workgroupBarrier();
  }
}`
}

/** WGSL expression: the workgroup total of value `idx` after {@link partialStores}. */
function sumOf(c: ExpertGemvConsts, nv: number, idx: string): string {
  if (!c.subgroupSize) return `part[${idx}]`
  const S = c.wg / c.subgroupSize
  return range(S)
    .map((s) => `part[${s * nv}u + ${idx}]`)
    .join(' + ')
}

/**
 * Decode down projection: y[r, h] = down_e[h]·act_r for every row r of expert e's group.
 * Grid (H / rows, expert slots); same layout as the gate+up kernel over K = intermediate.
 */
export const gemvDownWgsl = (c: ExpertGemvConsts): string => {
  const R = range(c.rows)
  const J = range(c.mt)
  const values = R.flatMap((r) => J.map((j) => `d${r}_${j}`))
  const K = chunks(c)
  return /* wgsl */ `${header(c, values.length)}
struct Params { hidden: u32, ic: u32, rowsTotal: u32, experts: u32 };
@group(0) @binding(0) var<storage, read> act: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> offsets: array<i32>;
${weightDecl(2, 'Down', c.dtype)}
@group(0) @binding(3) var<storage, read_write> y: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;
${entry(c)}
  let ic = params.ic;
  let n0 = wid.x * ${c.rows}u;
${R.map((r) => `  let wr${r} = (ws * params.hidden + min(n0 + ${r}u, params.hidden - 1u)) * ic;`).join('\n')}
${K.decl}
${R.map((r) => K.I.map((i) => `  let pd${r}_${i} = loadDown(wr${r} + ch${i});`).join('\n')).join('\n')}
  for (var tb = 0u; tb < n; tb = tb + ${c.mt}u) {
${J.map((j) => `    let ao${j} = (start + min(tb + ${j}u, n - 1u)) * ic * 2u;`).join('\n')}
${values.map((v) => `    var ${v} = 0.0;`).join('\n')}
${K.I.map((i) => J.map((j) => `    { let xa = ${K.x('act', `ao${j}`, i, 0)}; let xb = ${K.x('act', `ao${j}`, i, 1)};
${R.map((r) => `      d${r}_${j} = d${r}_${j} + dot(pd${r}_${i}[0], xa) + dot(pd${r}_${i}[1], xb);`).join('\n')} }`).join('\n')).join('\n')}
${partialStores(c, values)}
    if (lid < ${c.rows * c.mt}u) {
      let r = lid / ${c.mt}u;
      let j = lid % ${c.mt}u;
      let d = ${sumOf(c, values.length, 'lid')};
      if (n0 + r < params.hidden && tb + j < n) { y[(start + tb + j) * params.hidden + n0 + r] = d; }
    }
    workgroupBarrier();
  }
}`
}
