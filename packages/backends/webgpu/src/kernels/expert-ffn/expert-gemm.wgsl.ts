import { siluWgsl } from '../common/team.wgsl.js'

/** Init-time constants of the prefill (tiled grouped GEMM) expert kernels. */
export interface ExpertGemmConsts {
  readonly dtype: 'f32' | 'f16'
  /** `gateup`: act = silu(X·gateᵀ) ⊙ (X·upᵀ) with X gathered by rowToken; `down`: Y = act·downᵀ. */
  readonly kind: 'gateup' | 'down'
}

/** Tile sizes: 64×64 outputs per workgroup of 256, 4×4 per invocation, K step 16. */
export const GEMM_BM = 64
export const GEMM_BN = 64
const BK = 16

function bDecl(binding: number, name: string, dtype: 'f32' | 'f16'): string {
  return dtype === 'f16'
    ? `@group(0) @binding(${binding}) var<storage, read> w${name}: array<vec2<u32>>;
fn load${name}(q: u32) -> vec4<f32> { let p = w${name}[q]; return vec4<f32>(unpack2x16float(p.x), unpack2x16float(p.y)); }`
    : `@group(0) @binding(${binding}) var<storage, read> w${name}: array<vec4<f32>>;
fn load${name}(q: u32) -> vec4<f32> { return w${name}[q]; }`
}

/**
 * Grouped GEMM over exact-size (or padded) expert groups. Grid (N/64, row tiles, E), row
 * tiles from the largest group (indirect when the plan was built on the GPU); tiles past an
 * expert's group exit at once. Weights [N×K] row-major (`nn.Linear`), f32 accumulation.
 */
export const gemmWgsl = ({ dtype, kind }: ExpertGemmConsts): string => {
  const gateup = kind === 'gateup'
  const mats = gateup ? ['Gate', 'Up'] : ['Down']
  const I4 = [0, 1, 2, 3]
  const b0 = gateup ? 3 : 2
  return /* wgsl */ `
struct Params { tokens: u32, kdim: u32, ndim: u32, rowsTotal: u32 };
@group(0) @binding(0) var<storage, read> a: array<vec4<f32>>;
${gateup ? '@group(0) @binding(1) var<storage, read> rowToken: array<i32>;' : ''}
@group(0) @binding(${b0 - 1}) var<storage, read> offsets: array<i32>;
${mats.map((m, i) => bDecl(b0 + i, m, dtype)).join('\n')}
@group(0) @binding(${b0 + mats.length}) var<storage, read_write> outv: array<vec4<f32>>;
@group(0) @binding(${b0 + 1 + mats.length}) var<uniform> params: Params;
${siluWgsl}
var<workgroup> As: array<f32, ${BK * GEMM_BM}>;
${mats.map((m) => `var<workgroup> B${m}: array<f32, ${BK * GEMM_BN}>;`).join('\n')}
var<workgroup> groupStart: u32;
var<workgroup> groupRows: u32;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let e = wid.z;
  // the expert's weights: its slot (an expert store's device slot, else its own index; grid z = E)
  let ws = u32(offsets[2u * nwg.z + 1u + e]);
  if (lid == 0u) { groupStart = u32(offsets[e]); groupRows = u32(offsets[e + 1u] - offsets[e]); }
  let n = workgroupUniformLoad(&groupRows);
  let start = workgroupUniformLoad(&groupStart);
  // row tiles wid.y, wid.y + grid y, …: a grid with fewer row tiles than the largest group loops
  for (var m0 = wid.y * ${GEMM_BM}u; m0 < n; m0 = m0 + nwg.y * ${GEMM_BM}u) {
  let n0 = wid.x * ${GEMM_BN}u;
  let K = params.kdim;
  let N = params.ndim;
  let k4 = K / 4u;
  let tx = lid % 16u;
  let ty = lid / 16u;
  // loaders: row/col lr = lid / 4, k-quad lq = lid % 4
  let lr = lid / 4u;
  let lq = lid % 4u;
  let am = m0 + lr;
${gateup
    ? `  let tok = rowToken[start + min(am, n - 1u)];
  let arow = select(params.tokens, u32(tok), tok >= 0 && am < n);`
    : `  let arow = min(start + am, params.rowsTotal - 1u);`}
  let ao = arow * k4;
  let bcol = min(n0 + lr, N - 1u);
  let bo = (ws * N + bcol) * k4;
${mats.map((m) => I4.map((i) => `  var acc${m}${i} = vec4<f32>(0.0);`).join('\n')).join('\n')}
  for (var kk = 0u; kk < K; kk = kk + ${BK}u) {
    let av = a[ao + kk / 4u + lq];
${mats.map((m) => `    let b${m} = load${m}(bo + kk / 4u + lq);`).join('\n')}
    for (var c = 0u; c < 4u; c = c + 1u) {
      As[(4u * lq + c) * ${GEMM_BM}u + lr] = av[c];
${mats.map((m) => `      B${m}[(4u * lq + c) * ${GEMM_BN}u + lr] = b${m}[c];`).join('\n')}
    }
    workgroupBarrier();
    for (var k = 0u; k < ${BK}u; k = k + 1u) {
      let ab = k * ${GEMM_BM}u + ty * 4u;
      let av4 = vec4<f32>(As[ab], As[ab + 1u], As[ab + 2u], As[ab + 3u]);
      let bb = k * ${GEMM_BN}u + tx * 4u;
${mats.map((m) => `      let bv${m} = vec4<f32>(B${m}[bb], B${m}[bb + 1u], B${m}[bb + 2u], B${m}[bb + 3u]);`).join('\n')}
${mats.map((m) => I4.map((i) => `      acc${m}${i} = acc${m}${i} + av4[${i}] * bv${m};`).join('\n')).join('\n')}
    }
    workgroupBarrier();
  }
  let col = n0 + tx * 4u;
  if (col < N) {
${I4.map((i) => `    if (m0 + ty * 4u + ${i}u < n) {
      outv[((start + m0 + ty * 4u + ${i}u) * N + col) / 4u] = ${gateup ? `vec4<f32>(silu(accGate${i}.x), silu(accGate${i}.y), silu(accGate${i}.z), silu(accGate${i}.w)) * accUp${i}` : `accDown${i}`};
    }`).join('\n')}
  }
  }
}`
}
