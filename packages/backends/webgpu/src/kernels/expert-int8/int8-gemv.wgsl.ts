/**
 * Decode (small-group) int8 expert kernels, W8A8 like the GEMMs and bit-identical to them:
 * i32 dot products of the quantized activation rows with the tiled int8 weights, summed
 * exactly (integer subgroupAdd), then the same dequant epilogue.
 *
 * Layout ("column panels", weight-stationary): a workgroup owns one 16-column tile of one
 * expert's K×N weight — in the tiled layout (`weights-int8.ts`) that panel is a contiguous
 * K×16 row-major byte matrix, row k at byte 16·k. Invocation `lid` owns the 4-row chunks
 * g = lid, lid + wg, … (64 contiguous bytes: four vec4 loads, a warp reads 2 KiB in a row),
 * loads them once and transposes each 4×4-byte block in registers (unpack4xI8 / pack4xI8)
 * into one word per column holding 4 consecutive k — the operand `dot4I8Packed` wants. The
 * group's rows then stream past in blocks of `mt`: per row, one activation word per chunk and
 * 16 dot4 per chunk and matrix; each (column, row) sum is reduced across the workgroup
 * (subgroupAdd, then one partial per subgroup in workgroup memory). Plain 16-byte loads
 * stream the weights at the rate of the f16 decode kernels on half the bytes, where the
 * tensor-core fragments' loads did not (bench/int8-sweep.bench.ts).
 */
import { siluWgsl } from '../common/team.wgsl.js'
import { activeExpertPrologue } from '../expert-ffn/expert-gemv.wgsl.js'
import type { Int8GemmKind } from './int8-gemm.wgsl.js'

/** Init-time constants of the int8 decode kernels. */
export interface Int8GemvConsts {
  readonly kind: Int8GemmKind
  /** Group rows per block (accumulators per invocation: 16·mt per matrix). */
  readonly mt: number
  /** Invocations per workgroup (a multiple of the subgroup size). */
  readonly wg: number
  readonly subgroupSize: number
  /** 4-row chunks along K (K/4): a per-layer constant, so the chunk loops unroll. */
  readonly kc: number
}

const range = (n: number) => Array.from({ length: n }, (_, i) => i)
const mats = (kind: Int8GemmKind) => (kind === 'gateup' ? ['Gate', 'Up'] : ['Down'])

/** Values reduced per block: 16 columns × mt rows × matrices. */
export const int8GemvValues = (c: Pick<Int8GemvConsts, 'kind' | 'mt'>): number => 16 * c.mt * mats(c.kind).length

/** Bytes of workgroup memory: one partial per subgroup and value, plus the group bounds. */
export const int8GemvWorkgroupBytes = (c: Omit<Int8GemvConsts, 'kc'>): number => 4 * (c.wg / c.subgroupSize) * int8GemvValues(c) + 16

/**
 * WGSL of the int8 decode kernel. Bindings — `gateup`: xq (u32 words, rowsAlloc × K/4), sx,
 * offsets (E+1 offsets, then the non-empty expert list), gateQ, upQ (tiled, vec4<u32>),
 * gateScale, upScale, act; `down`: aq, sa, offsets, downQ, downScale, y. Grid (N/16, expert
 * slots); slots past the list and empty groups exit at once.
 */
export const int8GemvWgsl = (c: Int8GemvConsts): string => {
  const m = mats(c.kind)
  const nm = m.length
  const iters = Math.ceil(c.kc / c.wg)
  const guard = c.kc % c.wg !== 0
  const I = range(iters)
  const J = range(c.mt)
  const N16 = range(16)
  const S = c.wg / c.subgroupSize
  const NV = int8GemvValues(c)
  // value index of (row j, column n, matrix mi)
  const vi = (j: number, n: number, mi: number) => (j * 16 + n) * nm + mi
  const gateup = c.kind === 'gateup'
  const load = (ind: string) => m.map((x) => I.map((i) => `${ind}let w${x}${i} = transpose4x16(B${x}[panel + 4u * g${i}], B${x}[panel + 4u * g${i} + 1u], B${x}[panel + 4u * g${i} + 2u], B${x}[panel + 4u * g${i} + 3u]);`).join('\n')).join('\n')
  return /* wgsl */ `enable subgroups;
diagnostic(off, subgroup_uniformity);
struct Params { kdim: u32, ndim: u32, rowsAlloc: u32, experts: u32 };
@group(0) @binding(0) var<storage, read> A: array<u32>;
@group(0) @binding(1) var<storage, read> sa: array<f32>;
@group(0) @binding(2) var<storage, read> offsets: array<i32>;
${m.map((x, i) => `@group(0) @binding(${3 + i}) var<storage, read> B${x}: array<vec4<u32>>;`).join('\n')}
${m.map((x, i) => `@group(0) @binding(${3 + nm + i}) var<storage, read> s${x}: array<f32>;`).join('\n')}
@group(0) @binding(${3 + 2 * nm}) var<storage, read_write> outv: array<f32>;
@group(0) @binding(${4 + 2 * nm}) var<uniform> params: Params;
${siluWgsl}
var<workgroup> part: array<i32, ${S * NV}>;
var<workgroup> groupStart: u32;
var<workgroup> groupRows: u32;
var<workgroup> groupExpert: u32;
// the 16 words (one per column, 4 consecutive k each) of the 4×16-byte block r0..r3 (rows k..k+3)
fn transpose4x16(r0: vec4<u32>, r1: vec4<u32>, r2: vec4<u32>, r3: vec4<u32>) -> array<u32, 16> {
  var t: array<u32, 16>;
  for (var q = 0u; q < 4u; q = q + 1u) {
    let a = unpack4xI8(r0[q]);
    let b = unpack4xI8(r1[q]);
    let c = unpack4xI8(r2[q]);
    let d = unpack4xI8(r3[q]);
    for (var j = 0u; j < 4u; j = j + 1u) { t[4u * q + j] = pack4xI8(vec4<i32>(a[j], b[j], c[j], d[j])); }
  }
  return t;
}
@compute @workgroup_size(${c.wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(subgroup_invocation_id) sgl: u32) {
${activeExpertPrologue}
  let K = params.kdim;
  let N = params.ndim;
  let kc = K / 4u;
  let n0 = wid.x * 16u;
  // this column tile's K×16 panel, in vec4 words (one per row k)
  let panel = (e * N + n0) * (K / 16u);
${I.map((i) => (guard ? `  let ok${i} = lid + ${i * c.wg}u < ${c.kc}u;\n  let g${i} = min(lid + ${i * c.wg}u, ${c.kc - 1}u);` : `  let g${i} = lid + ${i * c.wg}u;`)).join('\n')}
  // weight-stationary: this invocation's chunks of every matrix, loaded once and transposed
${load('  ')}
  for (var tb = 0u; tb < n; tb = tb + ${c.mt}u) {
${J.map((j) => `    let ar${j} = (start + min(tb + ${j}u, n - 1u)) * kc;`).join('\n')}
${J.map((j) => m.map((x) => N16.map((nn) => `    var c${x}${j}_${nn} = 0i;`).join('\n')).join('\n')).join('\n')}
${I.map((i) => J.map((j) => `    {
      let xw = ${guard ? `select(0u, A[ar${j} + g${i}], ok${i})` : `A[ar${j} + g${i}]`};
${m.map((x) => N16.map((nn) => `      c${x}${j}_${nn} = c${x}${j}_${nn} + dot4I8Packed(w${x}${i}[${nn}], xw);`).join('\n')).join('\n')}
    }`).join('\n')).join('\n')}
${J.map((j) => m.map((x, mi) => N16.map((nn) => `    { let s = subgroupAdd(c${x}${j}_${nn}); if (sgl == 0u) { part[(lid / ${c.subgroupSize}u) * ${NV}u + ${vi(j, nn, mi)}u] = s; } }`).join('\n')).join('\n')).join('\n')}
    workgroupBarrier();
    for (var o = lid; o < ${16 * c.mt}u; o = o + ${c.wg}u) {
      let j = o / 16u;
      let col = n0 + o % 16u;
      let v = o * ${nm}u;
${m.map((x, mi) => `      var t${x} = 0i;\n      for (var s = 0u; s < ${S}u; s = s + 1u) { t${x} = t${x} + part[s * ${NV}u + v + ${mi}u]; }`).join('\n')}
      if (tb + j < n && col < N) {
        let row = start + tb + j;
        let sr = sa[row];
${gateup
    ? `        outv[row * N + col] = silu(f32(tGate) * sr * sGate[e * N + col]) * (f32(tUp) * sr * sUp[e * N + col]);`
    : `        outv[row * N + col] = f32(tDown) * sr * sDown[e * N + col];`}
      }
    }
    workgroupBarrier();
  }
}`
}
