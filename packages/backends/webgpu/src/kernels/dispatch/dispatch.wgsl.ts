/**
 * Device-side dispatch: per-expert selection (capacity-aware drop or static overflow), row
 * offsets (exact sizes or padded to capacity) and the scatter into expert groups. Together
 * they produce the same DispatchPlan rows as the CPU policy, in the same order.
 */

const SCAN = /* wgsl */ `
var<workgroup> scan: array<u32, 256>;
// Exclusive prefix of v over the workgroup, and the workgroup total. Uniform control flow only.
fn exclusiveScan(v: u32, lid: u32) -> vec2<u32> {
  scan[lid] = v;
  workgroupBarrier();
  for (var s = 1u; s < 256u; s = s << 1u) {
    let add = select(0u, scan[max(lid, s) - s], lid >= s);
    workgroupBarrier();
    scan[lid] = scan[lid] + add;
    workgroupBarrier();
  }
  let incl = scan[lid];
  let total = scan[255];
  workgroupBarrier();
  return vec2<u32>(incl - v, total);
}`

/**
 * One workgroup per expert e. Phase 1: ordered compaction of the tokens whose top-k picked e
 * (token order). Phase 2: keep rule — mode 0 all; mode 1 the C best by score (ties: lower
 * token); mode 2 the first C in token order (static gating overflow). Kept tokens are
 * compacted again in token order.
 */
export const selectWgsl = (): string => /* wgsl */ `
struct Params { tokens: u32, k: u32, experts: u32, mode: u32, capacity: u32, _a: u32, _b: u32, _c: u32 };
@group(0) @binding(0) var<storage, read> topIdx: array<i32>;
@group(0) @binding(1) var<storage, read> scores: array<f32>;
@group(0) @binding(2) var<storage, read_write> cand: array<u32>;
@group(0) @binding(3) var<storage, read_write> kept: array<u32>;
@group(0) @binding(4) var<storage, read_write> counts: array<u32>;
@group(0) @binding(5) var<uniform> params: Params;
${SCAN}
var<workgroup> nShared: u32;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let e = wid.x;
  let T = params.tokens;
  let k = params.k;
  let E = params.experts;
  let P = T * k;
  let base = e * T;
  var n = 0u;
  for (var b = 0u; b < P; b = b + 256u) {
    let p = b + lid;
    let flag = p < P && topIdx[min(p, P - 1u)] == i32(e);
    let r = exclusiveScan(select(0u, 1u, flag), lid);
    if (flag) { cand[base + n + r.x] = p / k; }
    n = n + r.y;
  }
  if (lid == 0u) { nShared = n; }
  let nu = workgroupUniformLoad(&nShared);
  let C = params.capacity;
  var m = 0u;
  for (var b = 0u; b < nu; b = b + 256u) {
    let i = b + lid;
    var keep = i < nu;
    if (keep && params.mode == 1u) {
      let t = cand[base + i];
      let s = scores[t * E + e];
      var rank = 0u;
      for (var j = 0u; j < nu; j = j + 1u) {
        let tj = cand[base + j];
        let sj = scores[tj * E + e];
        if (sj > s || (sj == s && tj < t)) {
          rank = rank + 1u;
          if (rank >= C) { break; }
        }
      }
      keep = rank < C;
    }
    if (keep && params.mode == 2u) { keep = i < C; }
    let r = exclusiveScan(select(0u, 1u, keep), lid);
    if (keep) { kept[base + m + r.x] = cand[base + i]; }
    m = m + r.y;
  }
  if (lid == 0u) { counts[e] = m; }
}`

/**
 * Row offsets: exclusive scan of group sizes (kept counts, or the capacity for every expert
 * when static), then the list of non-empty experts in ascending id at offsets[E+1 ..= 2E]
 * (−1 past the last; the decode kernels launch one workgroup row per list slot, not per
 * expert), then the weight slot of each expert at offsets[2E+1 ..] (the identity; a device
 * pipeline with an expert store overwrites it with the store's slots), plus indirect dispatch
 * arguments for the grouped GEMM kernels.
 * args = [gx gate-up, gy, E, gx down, gy, E, rows, maxRows]; gx from column tiles of `bn`
 * (gate+up) and `bnDown` (down, default `bn`).
 */
export const offsetsWgsl = (): string => /* wgsl */ `
struct Params { experts: u32, isStatic: u32, capacity: u32, colsGateUp: u32, colsDown: u32, bm: u32, bn: u32, bnDown: u32 };
@group(0) @binding(0) var<storage, read> counts: array<u32>;
@group(0) @binding(1) var<storage, read_write> offsets: array<i32>;
@group(0) @binding(2) var<storage, read_write> args: array<u32>;
@group(0) @binding(3) var<uniform> params: Params;
${SCAN}
var<workgroup> maxRows: atomic<u32>;
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
  let E = params.experts;
  var size = 0u;
  if (lid < E) { size = select(counts[lid], params.capacity, params.isStatic == 1u); }
  atomicMax(&maxRows, size);
  let r = exclusiveScan(size, lid);
  if (lid < E) { offsets[lid] = i32(r.x); offsets[2u * E + 1u + lid] = i32(lid); }
  let live = lid < E && size > 0u;
  let a = exclusiveScan(select(0u, 1u, live), lid);
  if (live) { offsets[E + 1u + a.x] = i32(lid); } else if (lid >= a.y && lid < E) { offsets[E + 1u + lid] = -1; }
  let mx = atomicLoad(&maxRows);
  if (lid == 0u) {
    offsets[E] = i32(r.y);
    let gy = (mx + params.bm - 1u) / params.bm;
    args[0] = (params.colsGateUp + params.bn - 1u) / params.bn;
    args[1] = gy;
    args[2] = E;
    args[3] = (params.colsDown + params.bnDown - 1u) / params.bnDown;
    args[4] = gy;
    args[5] = E;
    args[6] = r.y;
    args[7] = mx;
  }
}`

/**
 * Scatter: one invocation per (expert, row-in-group). Real rows get their token and combine
 * weight and mark the pair's row in tokenRows (row + 1; 0 = dropped); padding rows get
 * token −1 and weight 0.
 */
export const scatterWgsl = (): string => /* wgsl */ `
struct Params { tokens: u32, k: u32, experts: u32, width: u32 };
@group(0) @binding(0) var<storage, read> topIdx: array<i32>;
@group(0) @binding(1) var<storage, read> topW: array<f32>;
@group(0) @binding(2) var<storage, read> offsets: array<i32>;
@group(0) @binding(3) var<storage, read> counts: array<u32>;
@group(0) @binding(4) var<storage, read> kept: array<u32>;
@group(0) @binding(5) var<storage, read_write> rowToken: array<i32>;
@group(0) @binding(6) var<storage, read_write> rowWeight: array<f32>;
@group(0) @binding(7) var<storage, read_write> tokenRows: array<u32>;
@group(0) @binding(8) var<uniform> params: Params;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let idx = (wid.y * nwg.x + wid.x) * 256u + lid;
  let W = params.width;
  if (idx >= params.experts * W) { return; }
  let e = idx / W;
  let i = idx % W;
  let start = offsets[e];
  let rows = u32(offsets[e + 1u] - start);
  if (i >= rows) { return; }
  let row = u32(start) + i;
  if (i < counts[e]) {
    let t = kept[e * params.tokens + i];
    let k = params.k;
    var slot = 0u;
    for (var j = 0u; j < k; j = j + 1u) {
      if (topIdx[t * k + j] == i32(e)) { slot = j; }
    }
    rowToken[row] = i32(t);
    rowWeight[row] = topW[t * k + slot];
    tokenRows[t * k + slot] = row + 1u;
  } else {
    rowToken[row] = -1;
    rowWeight[row] = 0.0;
  }
}`
