/**
 * Seeded normal(0, std) weights generated on the GPU (PCG hash + Box–Muller), so large
 * benchmark layers need no host-side generation or upload. Each invocation makes one pair
 * of values: packed as two f16 in one u32, or two f32.
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
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * nwg.x + wid.x) * 256u + lid;
  if (i >= params.pairs) { return; }
  let h1 = pcg((i + params.first) ^ pcg(params.seed));
  let h2 = pcg(h1 ^ 0x9e3779b9u);
  let u1 = (f32(h1 >> 8u) + 1.0) / 16777217.0;
  let u2 = f32(h2 >> 8u) / 16777216.0;
  let r = sqrt(-2.0 * log(u1)) * params.sigma;
  let a = 6.283185307179586 * u2;
  let v = vec2<f32>(r * cos(a), r * sin(a));
  w[i] = ${dtype === 'f16' ? 'pack2x16float(v)' : 'v'};
}`
