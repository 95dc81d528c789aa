/**
 * Weighted combine back in token order: out[t] = Σ_j w(row_j) · y[row_j] over the token's
 * rows in slot order (tokenRows holds row + 1, 0 = dropped: contributes nothing).
 * One invocation per vec4 of the output.
 */
export const combineWgsl = (): string => /* wgsl */ `
struct Params { tokens: u32, h4: u32, slots: u32, _a: u32 };
@group(0) @binding(0) var<storage, read> y: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> rowWeight: array<f32>;
@group(0) @binding(2) var<storage, read> tokenRows: array<u32>;
@group(0) @binding(3) var<storage, read_write> outv: array<vec4<f32>>;
@group(0) @binding(4) var<uniform> params: Params;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let idx = (wid.y * nwg.x + wid.x) * 256u + lid;
  if (idx >= params.tokens * params.h4) { return; }
  let t = idx / params.h4;
  let c = idx % params.h4;
  var acc = vec4<f32>(0.0);
  for (var j = 0u; j < params.slots; j = j + 1u) {
    let r1 = tokenRows[t * params.slots + j];
    if (r1 > 0u) { acc = acc + rowWeight[r1 - 1u] * y[(r1 - 1u) * params.h4 + c]; }
  }
  outv[idx] = acc;
}`
