/**
 * int8 quantization on the device, bit-identical to the CPU rule in `src/int8.ts`:
 * q = roundHalfEven(127·|v|/m) evaluated EXACTLY with integer arithmetic on the f32 bit
 * patterns (no f32 division, whose WGSL accuracy is only 2.5 ulp), scale = m · fl32(1/127).
 * The row max is taken over the bit patterns of |v| (for non-negative floats the integer
 * order is the float order), so denormals and flush-to-zero never change it.
 */
import { INT8_MIN_ROW_MAX, INV127 } from '../../int8.js'

const f32Bits = (v: number): number => new Uint32Array(Float32Array.of(v).buffer)[0]

/** Bits of the smallest row max that is not treated as a zero row (2^-96). */
export const MIN_ROW_MAX_BITS = f32Bits(INT8_MIN_ROW_MAX)

/**
 * WGSL: `q8(v, mb)` quantizes v against the row max bits mb (normal, finite, |v| ≤ m);
 * `zeroRow(mb)`; `rowScale(mb)`.
 */
export const quantizeFnsWgsl = /* wgsl */ `
const INV127: f32 = bitcast<f32>(0x${f32Bits(INV127).toString(16)}u);
const MIN_ROW_MAX_BITS: u32 = 0x${MIN_ROW_MAX_BITS.toString(16)}u;
// roundHalfEven(127 * a / m) for the bit patterns ab = bits(|a|) <= mb = bits(m), m normal.
fn q127(ab: u32, mb: u32) -> u32 {
  let fa = ab >> 23u;
  let ea = max(fa, 1u);
  let d = (mb >> 23u) - ea;
  if (d > 8u) { return 0u; } // 127·a/m < 127/256
  let ma = select((ab & 0x7fffffu) | 0x800000u, ab & 0x7fffffu, fa == 0u);
  let mm = (mb & 0x7fffffu) | 0x800000u;
  let num = 127u * ma; // < 2^31
  let den = mm << d; // < 2^32 for d <= 8
  let q = num / den;
  let r = num - q * den;
  let h = den - r;
  return min(127u, q + select(0u, 1u, r > h || (r == h && (q & 1u) == 1u)));
}
fn q8(v: f32, mb: u32) -> i32 {
  let b = bitcast<u32>(v);
  let m = i32(q127(b & 0x7fffffffu, mb));
  return select(m, -m, (b >> 31u) == 1u);
}
fn q8x4(v: vec4<f32>, mb: u32) -> u32 {
  return pack4xI8(vec4<i32>(q8(v.x, mb), q8(v.y, mb), q8(v.z, mb), q8(v.w, mb)));
}
// Rows with max below 2^-96, or non-finite (Inf/NaN bits sort above every finite value), are zero.
fn zeroRow(mb: u32) -> bool { return mb < MIN_ROW_MAX_BITS || mb >= 0x7f800000u; }
fn rowScale(mb: u32) -> f32 { return select(bitcast<f32>(mb) * INV127, 0.0, zeroRow(mb)); }
fn absBits4(v: vec4<f32>) -> u32 {
  let b = bitcast<vec4<u32>>(v) & vec4<u32>(0x7fffffffu);
  return max(max(b.x, b.y), max(b.z, b.w));
}`

/** Default invocations per row of the activation quantizer (the layer sizes it to the row: {@link quantizeRowsWorkgroup}). */
export const QUANT_WG = 128

/**
 * Invocations per row for rows of `kdim` values: about 4 vec4 per invocation and pass (one
 * workgroup per row: a row of 14336 at 128 invocations took 35 µs on the H200, latency-bound),
 * a power of two from 64 to `maxWg`.
 */
export const quantizeRowsWorkgroup = (kdim: number, maxWg: number): number => Math.min(2 ** Math.floor(Math.log2(Math.max(64, maxWg))), Math.max(64, 2 ** Math.ceil(Math.log2(Math.max(1, kdim / 16)))))

/**
 * Activation rows → int8 rows + scales, one workgroup per output row r < rowsAlloc.
 * `gather`: source row = rowToken[r] of x ((T+1)×K, row T zero; −1 = padding reads row T);
 * `rows`: source row = r of a (R×K). Rows r ≥ offsets[E] (unused, or spare rows a tile may
 * read past the last group) are written as zeros with scale 0.
 * Output q: rowsAlloc × K int8 row-major, packed 4 per u32 (little-endian: byte i = k + i).
 */
export const quantizeRowsWgsl = (gather: boolean, wg = QUANT_WG): string => /* wgsl */ `
struct Params { tokens: u32, kdim: u32, rowsAlloc: u32, experts: u32 };
@group(0) @binding(0) var<storage, read> src: array<vec4<f32>>;
${gather ? '@group(0) @binding(1) var<storage, read> rowToken: array<i32>;' : ''}
@group(0) @binding(${gather ? 2 : 1}) var<storage, read> offsets: array<i32>;
@group(0) @binding(${gather ? 3 : 2}) var<storage, read_write> q: array<u32>;
@group(0) @binding(${gather ? 4 : 3}) var<storage, read_write> scale: array<f32>;
@group(0) @binding(${gather ? 5 : 4}) var<uniform> params: Params;
${quantizeFnsWgsl}
var<workgroup> rowMax: atomic<u32>;
@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let row = wid.y * nwg.x + wid.x;
  if (row >= params.rowsAlloc) { return; }
  let k4 = params.kdim / 4u;
  let live = row < u32(offsets[params.experts]);
${gather
    ? `  var srcRow = params.tokens;
  if (live) {
    let t = rowToken[row];
    if (t >= 0 && u32(t) < params.tokens) { srcRow = u32(t); }
  }`
    : '  let srcRow = row;'}
  let so = srcRow * k4;
  var m = 0u;
  if (live) {
    for (var i = lid; i < k4; i = i + ${wg}u) { m = max(m, absBits4(src[so + i])); }
  }
  atomicMax(&rowMax, m);
  workgroupBarrier();
  let mb = atomicLoad(&rowMax);
  let zero = !live || zeroRow(mb);
  let qo = row * k4;
  for (var i = lid; i < k4; i = i + ${wg}u) {
    var w = 0u;
    if (!zero) { w = q8x4(src[so + i], mb); }
    q[qo + i] = w;
  }
  if (lid == 0u) { scale[row] = select(rowScale(mb), 0.0, zero); }
}`

/** Invocations per 4-channel group of the weight quantizer. */
export const QUANT_W_WG = 64

/**
 * Device weights (E × N×K, `nn.Linear` layout, f32 or f16 packed two per u32) → int8 per
 * output channel, written transposed in the tiled layout of `weights-int8.ts` (element
 * [k][n] of expert e at byte e·K·N + int8TileByte(k, n, K)), plus scales E×N. One workgroup per (expert, 4 output channels):
 * each u32 it writes holds channels n..n+3 of one k.
 */
export const quantizeWeightsWgsl = (dtype: 'f32' | 'f16'): string => /* wgsl */ `
struct Params { ndim: u32, kdim: u32, experts: u32, _a: u32 };
@group(0) @binding(0) var<storage, read> w: array<${dtype === 'f16' ? 'u32' : 'f32'}>;
@group(0) @binding(1) var<storage, read_write> q: array<u32>;
@group(0) @binding(2) var<storage, read_write> scale: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;
${quantizeFnsWgsl}
fn loadW(i: u32) -> f32 {
  ${dtype === 'f16' ? 'return unpack2x16float(w[i >> 1u])[i & 1u];' : 'return w[i];'}
}
var<workgroup> chMax: array<atomic<u32>, 4>;
@compute @workgroup_size(${QUANT_W_WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let g = wid.y * nwg.x + wid.x;
  let N = params.ndim;
  let K = params.kdim;
  let n4 = N / 4u;
  if (g >= params.experts * n4) { return; }
  let e = g / n4;
  let n0 = (g % n4) * 4u;
  let base = e * N * K;
  for (var j = 0u; j < 4u; j = j + 1u) {
    var m = 0u;
    let ro = base + (n0 + j) * K;
    for (var k = lid; k < K; k = k + ${QUANT_W_WG}u) { m = max(m, bitcast<u32>(loadW(ro + k)) & 0x7fffffffu); }
    atomicMax(&chMax[j], m);
  }
  workgroupBarrier();
  let mb = vec4<u32>(atomicLoad(&chMax[0]), atomicLoad(&chMax[1]), atomicLoad(&chMax[2]), atomicLoad(&chMax[3]));
  let z = vec4<bool>(zeroRow(mb.x), zeroRow(mb.y), zeroRow(mb.z), zeroRow(mb.w));
  for (var k = lid; k < K; k = k + ${QUANT_W_WG}u) {
    var v = vec4<i32>(0);
    for (var j = 0u; j < 4u; j = j + 1u) {
      if (!z[j]) { v[j] = q8(loadW(base + (n0 + j) * K + k), mb[j]); }
    }
    q[(base + ((n0 / 16u) * (K / 32u) + k / 32u) * 512u + (k % 32u) * 16u + n0 % 16u) / 4u] = pack4xI8(v);
  }
  if (lid < 4u) { scale[e * N + n0 + lid] = rowScale(mb[lid]); }
}`
