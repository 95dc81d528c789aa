/**
 * Seeded normal(0, std) weights generated on the GPU (PCG hash + Box–Muller), so large
 * benchmark layers need no host-side generation or upload. Each invocation makes one pair
 * of values: packed as two f16 in one u32, or two f32.
 *
 * The values match core's `seededNormals` to f32 rounding on every conformant device, so the
 * transcendental functions are computed here rather than by WGSL's builtins, whose accuracy
 * the spec leaves coarse: `cos`/`sin` to an absolute 2^-11 on [-π, π] (SwiftShader, Chromium's
 * CPU adapter, is that coarse: weights were 2e-4 off, relatively), `log` to an absolute 2^-21
 * near 1 (large relative errors in small radii). The angle 2π·u2 is reduced to a quadrant and
 * x in [-π/4, π/4] exactly (u2 is a multiple of 2^-24), then Cephes' single-precision sinf/cosf
 * polynomials; ln(u1) is e·ln 2 + ln m with m in [√½, √2) from `frexp` and the atanh series
 * of ln m. Both are within a few ulp.
 */
export const initWeightsWgsl = (dtype: 'f32' | 'f16'): string => /* wgsl */ `
struct Params { pairs: u32, seed: u32, sigma: f32, first: u32 };
@group(0) @binding(0) var<storage, read_write> w: array<${dtype === 'f16' ? 'u32' : 'vec2<f32>'}>;
@group(0) @binding(1) var<uniform> params: Params;
fn pcg(v: u32) -> u32 {
  let s = v * 747796405u + 2891336453u;
  let x = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
  return (x >> 22u) ^ x;
}
// ln(u) for u in (0, 1]: u = m·2^e with m in [√½, √2), ln m = 2·atanh((m − 1)/(m + 1))
fn lnUnit(u: f32) -> f32 {
  let fe = frexp(u);
  var m = fe.fract;
  var e = f32(fe.exp);
  if (m < 0.70710678) {
    m = 2.0 * m;
    e = e - 1.0;
  }
  let s = (m - 1.0) / (m + 1.0);
  let z = s * s;
  return e * 0.6931471805599453 + 2.0 * s * (1.0 + z * (0.33333333 + z * (0.2 + z * (0.14285715 + z * 0.11111111))));
}
// (cos, sin) of 2π·t for t in [0, 1): quadrant q and x = (4t − q)·π/2 in [-π/4, π/4]
fn cosSinTurn(t: f32) -> vec2<f32> {
  let q = round(4.0 * t);
  let x = (4.0 * t - q) * 1.5707963267948966;
  let z = x * x;
  let s = x + x * z * (-1.6666654611e-1 + z * (8.3321608736e-3 + z * -1.9515295891e-4));
  let c = 1.0 - 0.5 * z + z * z * (4.166664568298827e-2 + z * (-1.388731625493765e-3 + z * 2.443315711809948e-5));
  switch (u32(q) & 3u) {
    case 0u: { return vec2<f32>(c, s); }
    case 1u: { return vec2<f32>(-s, c); }
    case 2u: { return vec2<f32>(-c, -s); }
    default: { return vec2<f32>(s, -c); }
  }
}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * nwg.x + wid.x) * 256u + lid;
  if (i >= params.pairs) { return; }
  let h1 = pcg((i + params.first) ^ pcg(params.seed));
  let h2 = pcg(h1 ^ 0x9e3779b9u);
  let u1 = (f32(h1 >> 8u) + 1.0) / 16777217.0;
  let u2 = f32(h2 >> 8u) / 16777216.0;
  let r = sqrt(-2.0 * lnUnit(u1)) * params.sigma;
  let v = r * cosSinTurn(u2);
  w[i] = ${dtype === 'f16' ? 'pack2x16float(v)' : 'v'};
}`
