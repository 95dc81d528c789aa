/**
 * The grouping kernels every dispatcher lowering runs (core's `groupByExpert` on the device):
 * per expert, the routing's pairs in priority order (token then slot, or slot then token),
 * kept all (`exact`) or the first `cap` per source segment (`padded`, the rest dropped as
 * overflow); then row offsets (dispatch.wgsl's offsets kernel) and the scatter into rows.
 * Rows come out in the order of the host dispatchers: within an expert, token order (then
 * slot order), padded groups in segment order with zero rows after each segment's pairs.
 */
import { WORKGROUP_SCAN_WGSL } from '@moe-route/core'
import { linearWorkgroup } from '../kernels/common/team.wgsl.js'
import { OFFSETS_FN_WGSL } from '../kernels/dispatch/dispatch.wgsl.js'

const SCAN = WORKGROUP_SCAN_WGSL

/** Marks a padded position with no pair. */
export const NO_PAIR = 0xffffffff

/**
 * Functions of the grouping kernels over `ids`, `aux` and `params` (tokens, slots, padded,
 * segments, choice, srcBase as group-select's Params): the pair at a priority position, the
 * source segments told apart, and a pair's segment.
 */
const GROUP_FNS = /* wgsl */ `
// Pair index of position q in priority order: token-major (t, j) or choice-major (j, t).
fn pairAt(q: u32) -> u32 {
  if (params.choice == 1u) { return (q % params.tokens) * params.slots + q / params.tokens; }
  return q;
}
// Source segments the kernel tells apart (1 when not padded per source device).
fn segmentCount() -> u32 { return select(1u, params.segments, params.padded == 1u && params.segments > 1u); }
// Segment of pair p when it goes to expert e, else 0xffffffff (another expert, a dropped slot,
// or a source device past the segments, which the single-pass kernel never counts either).
fn segmentOf(p: u32, e: u32) -> u32 {
  if (ids[p] != i32(e)) { return 0xffffffffu; }
  if (segmentCount() == 1u) { return 0u; }
  let s = aux[params.srcBase + p / params.slots];
  return select(0xffffffffu, s, s < params.segments);
}`

/**
 * One workgroup per expert. Writes `kept[e·W + i]` = pair index (t·S + j) of the group's
 * rows (NO_PAIR for padding), `counts[e]` = real rows, and adds the overflow to the
 * dispatcher's STAT_DROPPED counter.
 */
export const groupSelectWgsl = (): string => /* wgsl */ `
struct Params { tokens: u32, slots: u32, experts: u32, padded: u32, cap: u32, segments: u32, choice: u32, srcBase: u32, width: u32, statBase: u32, _a: u32, _b: u32 };
@group(0) @binding(0) var<storage, read> ids: array<i32>;
@group(0) @binding(1) var<storage, read> aux: array<u32>;
@group(0) @binding(2) var<storage, read_write> kept: array<u32>;
@group(0) @binding(3) var<storage, read_write> counts: array<u32>;
@group(0) @binding(4) var<storage, read_write> counters: array<atomic<u32>>;
@group(0) @binding(5) var<uniform> params: Params;
${SCAN}
${GROUP_FNS}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let e = i32(wid.x);
  let P = params.tokens * params.slots;
  let base = wid.x * params.width;
  if (params.padded == 0u) {
    var n = 0u;
    for (var b = 0u; b < P; b = b + 256u) {
      let q = b + lid;
      let p = pairAt(min(q, max(P, 1u) - 1u));
      let flag = q < P && ids[p] == e;
      let r = exclusiveScan(select(0u, 1u, flag), lid);
      if (flag) { kept[base + n + r.x] = p; }
      n = n + r.y;
    }
    if (lid == 0u) { counts[wid.x] = n; }
    return;
  }
  let cap = params.cap;
  for (var i = lid; i < params.width; i = i + 256u) { kept[base + i] = 0xffffffffu; }
  storageBarrier();
  var total = 0u;
  var over = 0u;
  for (var seg = 0u; seg < params.segments; seg = seg + 1u) {
    var n = 0u;
    for (var b = 0u; b < P; b = b + 256u) {
      let q = b + lid;
      let p = pairAt(min(q, max(P, 1u) - 1u));
      let t = p / params.slots;
      let flag = q < P && ids[p] == e && (params.segments == 1u || aux[params.srcBase + t] == seg);
      let r = exclusiveScan(select(0u, 1u, flag), lid);
      if (flag && n + r.x < cap) { kept[base + seg * cap + n + r.x] = p; }
      n = n + r.y;
    }
    total = total + min(n, cap);
    over = over + (n - min(n, cap));
  }
  if (lid == 0u) {
    counts[wid.x] = total;
    if (over > 0u) { atomicAdd(&counters[params.statBase], over); }
  }
}`

/**
 * Shared head of the chunked group-select kernels: the priority order is cut into C chunks of
 * `per`·256 consecutive positions; invocation `lid` of chunk c takes positions
 * c·per·256 + lid·per … + per − 1 (so a workgroup's matches come in priority order by lid).
 * Params as groupSelectWgsl's, with `chunks` (C) and `per` in its two spare words.
 */
const GROUP_CHUNK_HEAD = /* wgsl */ `
struct Params { tokens: u32, slots: u32, experts: u32, padded: u32, cap: u32, segments: u32, choice: u32, srcBase: u32, width: u32, statBase: u32, chunks: u32, per: u32 };
${GROUP_FNS}`

/**
 * Start of both chunked passes' main: this workgroup's expert e and chunk c (a 1-D grid over x
 * and y; workgroups past E·C exit), this invocation's positions q0 … q1 − 1, the segments.
 */
const CHUNK_PROLOGUE = /* wgsl */ `  let C = params.chunks;
  ${linearWorkgroup}
  if (wgLinear >= params.experts * C) { return; }
  let e = wgLinear / C;
  let c = wgLinear % C;
  let P = params.tokens * params.slots;
  let q0 = (c * 256u + lid) * params.per;
  let q1 = min(q0 + params.per, P);
  let segs = segmentCount();`

/**
 * Chunked group-select, first pass: one workgroup per (expert e, chunk c) (a 1-D grid over
 * x and y) writes the chunk's matches per segment s to `scratch[(e·segs + s)·C + c]`.
 */
export const groupCountWgsl = (): string => /* wgsl */ `
@group(0) @binding(0) var<storage, read> ids: array<i32>;
@group(0) @binding(1) var<storage, read> aux: array<u32>;
@group(0) @binding(2) var<storage, read_write> scratch: array<u32>;
@group(0) @binding(3) var<uniform> params: Params;
${GROUP_CHUNK_HEAD}
var<workgroup> segCount: array<atomic<u32>, 256>;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
${CHUNK_PROLOGUE}
  for (var sb = 0u; sb < segs; sb = sb + 256u) {
    atomicStore(&segCount[lid], 0u);
    workgroupBarrier();
    // runs of one segment add at once (one add per invocation when there is one segment)
    var run = 0xffffffffu;
    var n = 0u;
    for (var q = q0; q < q1; q = q + 1u) {
      let s = segmentOf(pairAt(q), e);
      if (s >= sb && s < sb + 256u) {
        if (s != run) {
          if (n > 0u) { atomicAdd(&segCount[run - sb], n); }
          run = s;
          n = 0u;
        }
        n = n + 1u;
      }
    }
    if (n > 0u) { atomicAdd(&segCount[run - sb], n); }
    workgroupBarrier();
    if (sb + lid < segs) { scratch[(e * segs + sb + lid) * C + c] = atomicLoad(&segCount[lid]); }
    workgroupBarrier();
  }
}`

/**
 * Chunked group-select, second pass: one workgroup per (expert e, chunk c ≤ 256). Per
 * segment, the exclusive prefix of the first pass's chunk counts places the chunk's matches
 * (global rank = prefix + in-chunk scan, so `kept` holds priority order as the single-pass
 * kernel writes it; padded keeps ranks < cap). The expert's last chunk writes counts[e],
 * adds the overflow to STAT_DROPPED and fills padded positions past each segment's pairs
 * with NO_PAIR (positions no other chunk writes).
 */
export const groupWriteWgsl = (): string => /* wgsl */ `
@group(0) @binding(0) var<storage, read> ids: array<i32>;
@group(0) @binding(1) var<storage, read> aux: array<u32>;
@group(0) @binding(2) var<storage, read> scratch: array<u32>;
@group(0) @binding(3) var<storage, read_write> kept: array<u32>;
@group(0) @binding(4) var<storage, read_write> counts: array<u32>;
@group(0) @binding(5) var<storage, read_write> counters: array<atomic<u32>>;
@group(0) @binding(6) var<uniform> params: Params;
${GROUP_CHUNK_HEAD}
${SCAN}
var<workgroup> chunkBase: u32;
var<workgroup> chunkCount: u32;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
${CHUNK_PROLOGUE}
  let padded = params.padded == 1u;
  let cap = params.cap;
  let base = e * params.width;
  var total = 0u;
  var over = 0u;
  for (var s = 0u; s < segs; s = s + 1u) {
    let row = (e * segs + s) * C;
    let v = select(0u, scratch[row + min(lid, C - 1u)], lid < C);
    let r = exclusiveScan(v, lid);
    if (lid == c) {
      chunkBase = r.x;
      chunkCount = v;
    }
    let n = r.y;
    if (c == C - 1u) {
      if (padded) {
        let kept_n = min(n, cap);
        for (var i = kept_n + lid; i < cap; i = i + 256u) { kept[base + s * cap + i] = 0xffffffffu; }
        total = total + kept_n;
        over = over + (n - kept_n);
      } else {
        total = total + n;
      }
    }
    let b0 = workgroupUniformLoad(&chunkBase);
    let cnt = workgroupUniformLoad(&chunkCount);
    if (cnt > 0u && (!padded || b0 < cap)) {
      var mine = 0u;
      for (var q = q0; q < q1; q = q + 1u) { if (segmentOf(pairAt(q), e) == s) { mine = mine + 1u; } }
      var rank = b0 + exclusiveScan(mine, lid).x;
      for (var q = q0; q < q1 && mine > 0u; q = q + 1u) {
        let p = pairAt(q);
        if (segmentOf(p, e) == s) {
          if (!padded) { kept[base + rank] = p; } else if (rank < cap) { kept[base + s * cap + rank] = p; }
          rank = rank + 1u;
          mine = mine - 1u;
        }
      }
    }
  }
  if (c == C - 1u && lid == 0u) {
    counts[e] = total;
    if (over > 0u) { atomicAdd(&counters[params.statBase], over); }
  }
}`

/**
 * One invocation per (expert, position < W): row offsets[e] + i gets the pair's token and
 * weight and marks the pair computed in tokenRows (row + 1); positions without a pair are
 * padding (token −1, weight 0).
 */
export const groupScatterWgsl = (): string => /* wgsl */ `
struct Params { slots: u32, experts: u32, width: u32, _a: u32 };
@group(0) @binding(0) var<storage, read> w: array<f32>;
@group(0) @binding(1) var<storage, read> offsets: array<i32>;
@group(0) @binding(2) var<storage, read> kept: array<u32>;
@group(0) @binding(3) var<storage, read_write> rowToken: array<i32>;
@group(0) @binding(4) var<storage, read_write> rowWeight: array<f32>;
@group(0) @binding(5) var<storage, read_write> tokenRows: array<u32>;
@group(0) @binding(6) var<uniform> params: Params;
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
  let p = kept[e * W + i];
  if (p != 0xffffffffu) {
    rowToken[row] = i32(p / params.slots);
    rowWeight[row] = w[p];
    tokenRows[p] = row + 1u;
  } else {
    rowToken[row] = -1;
    rowWeight[row] = 0.0;
  }
}`

/** (token, slot) pairs the fused grouping kernel holds: 4 priority positions per invocation of its one workgroup. */
export const GROUP_FUSED_PAIRS = 1024

/**
 * The whole grouping of a small batch in one workgroup (P = T·S ≤ {@link GROUP_FUSED_PAIRS},
 * E ≤ 256): what group-select, the offsets kernel (dispatch.wgsl's {@link OFFSETS_FN_WGSL}), a
 * clear of tokenRows and group-scatter write, bit for bit, without `kept`. Invocation lid
 * stages the keys (expert·segments + segment, or none) of priority positions 4·lid … 4·lid + 3
 * in workgroup memory; a position's rank in its expert and segment is the count of earlier
 * positions with its key (a walk over the earlier invocations' keys, 4 at a time). Ranks below
 * the cap (every rank when exact) count as the expert's rows (workgroup atomics), the rest as
 * overflow (added once to STAT_DROPPED when > 0). One scan gives offsets, the active list,
 * the slot table and the GEMM grid; padded groups get padding rows (token −1, weight 0), then
 * every pair writes its row (offsets[e] + rank, or + segment·cap + rank) and tokenRows
 * (row + 1, 0 for a pair without a row).
 */
export const groupFusedWgsl = (): string => /* wgsl */ `
struct Params { tokens: u32, slots: u32, experts: u32, padded: u32, cap: u32, segments: u32, choice: u32, srcBase: u32, width: u32, statBase: u32, colsGateUp: u32, colsDown: u32, bm: u32, bn: u32, bnDown: u32, _a: u32 };
@group(0) @binding(0) var<storage, read> ids: array<i32>;
@group(0) @binding(1) var<storage, read> aux: array<u32>;
@group(0) @binding(2) var<storage, read> w: array<f32>;
@group(0) @binding(3) var<storage, read_write> counts: array<u32>;
@group(0) @binding(4) var<storage, read_write> counters: array<atomic<u32>>;
@group(0) @binding(5) var<storage, read_write> offsets: array<i32>;
@group(0) @binding(6) var<storage, read_write> args: array<u32>;
@group(0) @binding(7) var<storage, read_write> rowToken: array<i32>;
@group(0) @binding(8) var<storage, read_write> rowWeight: array<f32>;
@group(0) @binding(9) var<storage, read_write> tokenRows: array<u32>;
@group(0) @binding(10) var<uniform> params: Params;
${SCAN}
${GROUP_FNS}
${OFFSETS_FN_WGSL}
const NONE = 0xffffffffu;
var<workgroup> keys: array<vec4<u32>, 256>;
var<workgroup> rows: array<atomic<u32>, 256>;
var<workgroup> overflow: atomic<u32>;
var<workgroup> firstRow: array<u32, 256>;
// How many components of v equal k.
fn matches(v: vec4<u32>, k: u32) -> u32 { return dot(vec4<u32>(v == vec4<u32>(k)), vec4<u32>(1u)); }
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
  let P = params.tokens * params.slots;
  let E = params.experts;
  let segs = segmentCount();
  let padded = params.padded == 1u;
  let cap = params.cap;
  // keys of this invocation's positions, in priority order
  var key = vec4<u32>(NONE);
  for (var i = 0u; i < 4u; i = i + 1u) {
    let q = lid * 4u + i;
    if (q < P) {
      let p = pairAt(q);
      let id = ids[p];
      if (id >= 0 && u32(id) < E) {
        let s = segmentOf(p, u32(id));
        if (s != NONE) { key[i] = u32(id) * segs + s; }
      }
    }
  }
  keys[lid] = key;
  workgroupBarrier();
  // ranks: earlier positions with the same key (earlier invocations, then this one's own)
  var rank = vec4<u32>(0u);
  rank.y = select(0u, 1u, key.y == key.x);
  rank.z = select(0u, 1u, key.z == key.x) + select(0u, 1u, key.z == key.y);
  rank.w = select(0u, 1u, key.w == key.x) + select(0u, 1u, key.w == key.y) + select(0u, 1u, key.w == key.z);
  var over = 0u;
  if (lid * 4u < P) {
    for (var b = 0u; b < lid; b = b + 1u) {
      let v = keys[b];
      rank = rank + vec4<u32>(matches(v, key.x), matches(v, key.y), matches(v, key.z), matches(v, key.w));
    }
    for (var i = 0u; i < 4u; i = i + 1u) {
      if (key[i] == NONE) { continue; }
      if (!padded || rank[i] < cap) { atomicAdd(&rows[key[i] / segs], 1u); } else { over = over + 1u; }
    }
    if (over > 0u) { atomicAdd(&overflow, over); }
  }
  workgroupBarrier();
  // group sizes → offsets, active list, slot table, GEMM grid; counts and the overflow
  let n = atomicLoad(&rows[lid]);
  let size = select(0u, select(n, params.width, padded), lid < E);
  firstRow[lid] = writeOffsets(lid, E, size, params.colsGateUp, params.colsDown, params.bm, params.bn, params.bnDown);
  if (lid < E) { counts[lid] = n; }
  if (lid == 0u) {
    let o = atomicLoad(&overflow);
    if (o > 0u) { atomicAdd(&counters[params.statBase], o); }
  }
  workgroupBarrier();
  // padded groups: every position a padding row first, then the pairs' rows over them
  if (padded) {
    for (var r = lid; r < E * params.width; r = r + 256u) {
      rowToken[r] = -1;
      rowWeight[r] = 0.0;
    }
  }
  storageBarrier();
  for (var i = 0u; i < 4u; i = i + 1u) {
    let q = lid * 4u + i;
    if (q >= P) { break; }
    let p = pairAt(q);
    var mark = 0u;
    if (key[i] != NONE && (!padded || rank[i] < cap)) {
      let e = key[i] / segs;
      let row = firstRow[e] + select(rank[i], (key[i] % segs) * cap + rank[i], padded);
      rowToken[row] = i32(p / params.slots);
      rowWeight[row] = w[p];
      mark = row + 1u;
    }
    tokenRows[p] = mark;
  }
}`

/**
 * Workgroups of partial sums the telemetry kernels use at most (a grid-stride loop covers
 * larger batches): enough to fill a large GPU, and few enough for one workgroup to sum.
 */
export const TELE_MAX_GROUPS = 1024
/** Words of one workgroup's telemetry partials: 6 counts (u32), massBefore and massKept (f32). */
export const TELE_PART_WORDS = 8

/**
 * Two fixed-order f32 sums over a workgroup of 256 (a tree, the same order every run):
 * `treeSum2(lid, a, b)` leaves Σa in redA[0] and Σb in redB[0]. Call from uniform control flow.
 */
const TREE_SUM2 = /* wgsl */ `
var<workgroup> redA: array<f32, 256>;
var<workgroup> redB: array<f32, 256>;
fn treeSum2(lid: u32, a: f32, b: f32) {
  redA[lid] = a;
  redB[lid] = b;
  workgroupBarrier();
  for (var s = 128u; s > 0u; s = s >> 1u) {
    if (lid < s) { redA[lid] = redA[lid] + redA[lid + s]; redB[lid] = redB[lid] + redB[lid + s]; }
    workgroupBarrier();
  }
}`

/**
 * The output-norm partial of workgroup `g` of `groups` (the one source of the norm's sums):
 * each invocation sums dot(v, v) over vec4 elements g·256 + lid, + groups·256, … below
 * `params.n4` of `outv`, then a tree sum (treeSum2). Returns the sum to every invocation.
 * Call from uniform control flow.
 */
const NORM_PARTIAL = /* wgsl */ `
fn normPartial(lid: u32, g: u32, groups: u32) -> f32 {
  var acc = 0.0;
  for (var i = g * 256u + lid; i < params.n4; i = i + groups * 256u) {
    let v = outv[i];
    acc = acc + dot(v, v);
  }
  treeSum2(lid, acc, 0.0);
  let s = redA[0];
  workgroupBarrier();
  return s;
}`

/**
 * A workgroup's running totals of the telemetry counts: `sums` (pairsBefore, pairsAfter,
 * dropped, added, tokens with a computed pair, crossing) and the two mass sums (treeSum2's
 * redA[0], redB[0] once summed).
 */
const TELE_TOTALS = /* wgsl */ `
var<workgroup> sums: array<atomic<u32>, 6>;
${TREE_SUM2}`

/**
 * The telemetry counts of the pairs p = g·256 + lid, + groups·256, … of the T × max(k, S)
 * pairs (`params.width` = max(k, S)): the one source of every count (see
 * telemetryPartialsWgsl). Leaves the workgroup's counts in `sums` and its massBefore and
 * massKept in redA[0] and redB[0] (fixed-order tree sums), and adds its loads before into
 * the telemetry block (`counters`, atomic). Call from uniform control flow.
 */
const TELE_PARTIAL = /* wgsl */ `
var<workgroup> loadBefore: array<atomic<u32>, 256>;
// Device of expert e's replica that serves token t (the placement table in aux).
fn dstOf(e: u32, t: u32) -> u32 { return aux[aux[e] + t % (aux[e + 1u] - aux[e])]; }
fn telePartial(lid: u32, g: u32, groups: u32) {
  let k = params.k;
  let S = params.slots;
  let Q = params.width;
  let n = params.tokens * Q;
  let lb = params.teleBase + 12u;
  var pb = 0u; var pa = 0u; var dr = 0u; var ad = 0u; var kept = 0u; var cr = 0u;
  var mb = 0.0; var mk = 0.0;
  for (var p = g * 256u + lid; p < n; p = p + groups * 256u) {
    let t = p / Q;
    let j = p % Q;
    if (j < k) {
      let e0 = origIds[t * k + j];
      if (e0 >= 0) {
        pb = pb + 1u;
        mb = mb + origW[t * k + j];
        if (u32(e0) < 256u) { atomicAdd(&loadBefore[u32(e0)], 1u); } else { atomicAdd(&counters[lb + u32(e0)], 1u); }
        var found = false;
        var f = 0.0;
        for (var j2 = 0u; j2 < S; j2 = j2 + 1u) {
          if (ids[t * S + j2] == e0 && tokenRows[t * S + j2] > 0u) { found = true; f = f + w[t * S + j2]; }
        }
        if (found) { mk = mk + f; } else { dr = dr + 1u; }
      }
    }
    if (j < S) {
      let e = ids[t * S + j];
      if (e >= 0) {
        let src = select(0u, aux[params.srcBase + t], params.devices > 1u);
        let dst = dstOf(u32(e), t);
        var seenDst = false;
        var earlier = false;
        var dup = false;
        for (var j3 = 0u; j3 < j; j3 = j3 + 1u) {
          let e3 = ids[t * S + j3];
          if (e3 < 0) { continue; }
          if (params.perPair == 0u && dstOf(u32(e3), t) == dst) { seenDst = true; }
          if (tokenRows[t * S + j3] > 0u) {
            earlier = true;
            if (e3 == e) { dup = true; }
          }
        }
        if (!seenDst && dst != src) { cr = cr + 1u; }
        if (tokenRows[t * S + j] > 0u) {
          if (!earlier) { kept = kept + 1u; }
          if (!dup) {
            pa = pa + 1u;
            var orig = false;
            for (var j0 = 0u; j0 < k; j0 = j0 + 1u) { if (origIds[t * k + j0] == e) { orig = true; } }
            if (!orig) { ad = ad + 1u; }
          }
        }
      }
    }
  }
  atomicAdd(&sums[0], pb);
  atomicAdd(&sums[1], pa);
  atomicAdd(&sums[2], dr);
  atomicAdd(&sums[3], ad);
  atomicAdd(&sums[4], kept);
  atomicAdd(&sums[5], cr);
  treeSum2(lid, mb, mk);
  for (var e = lid; e < min(params.experts, 256u); e = e + 256u) {
    let c = atomicLoad(&loadBefore[e]);
    if (c > 0u) { atomicAdd(&counters[lb + e], c); }
  }
}`

/**
 * Writes the telemetry block at `params.teleBase` of `counters` (atomic) from the batch's
 * totals in `sums`, redA[0] and redB[0] (TELE_TOTALS, complete and behind a barrier), the
 * output's sum of squares `normSq` (invocation 0's) and loadAfter from `counts`: the one
 * source of the block's layout (see telemetryWgsl). Loads before are already there.
 */
const TELE_WRITE = /* wgsl */ `
fn teleWrite(lid: u32, normSq: f32) {
  let b = params.teleBase;
  if (lid == 0u) {
    for (var i = 0u; i < 6u; i = i + 1u) { atomicStore(&counters[b + i], atomicLoad(&sums[i])); }
    // the partials count the tokens that kept a pair
    atomicStore(&counters[b + 4u], params.tokens - atomicLoad(&sums[4]));
    atomicStore(&counters[b + 6u], bitcast<u32>(redA[0]));
    atomicStore(&counters[b + 7u], bitcast<u32>(redB[0]));
    atomicStore(&counters[b + 8u], bitcast<u32>(normSq));
  }
  for (var e = lid; e < params.experts; e = e + 256u) {
    atomicStore(&counters[b + 12u + params.experts + e], counts[e]);
  }
}`

/** The bindings TELE_PARTIAL reads, from binding 0 (the first pass's and the fused kernel's). */
const TELE_PAIR_BINDINGS = /* wgsl */ `
@group(0) @binding(0) var<storage, read> origIds: array<i32>;
@group(0) @binding(1) var<storage, read> origW: array<f32>;
@group(0) @binding(2) var<storage, read> ids: array<i32>;
@group(0) @binding(3) var<storage, read> w: array<f32>;
@group(0) @binding(4) var<storage, read> tokenRows: array<u32>;
@group(0) @binding(5) var<storage, read> aux: array<u32>;`

/**
 * The batch's telemetry counts on the device, first pass: one invocation per pair (t, j) of
 * the T × max(k, S) pairs (router slot j < k, final slot j < S), in workgroups of 256 pairs
 * (a grid-stride loop past `groups` workgroups). A router pair counts pairsBefore, its
 * mass, its load (loadBefore, added with integer atomics straight into the telemetry block)
 * and whether it was computed (its final weight to massKept) or dropped. A final pair
 * counts its token's traffic (core's tokenTraffic: once per distinct destination device of
 * the final routing, or once per pair when `perPair`), whether it is a computed distinct
 * pair (pairsAfter), one the router did not choose (added), and whether it is its token's
 * first computed slot (tokens with any pair: fullyDropped = T − that). Workgroup g writes
 * its 8 partials at `partBase` + 8·g (counts: pairsBefore, pairsAfter, dropped, added,
 * tokens with a pair, crossing; then massBefore, massKept as f32 bits, each a fixed-order
 * tree sum, so the results do not vary run to run). With `norm`, the dispatch's first
 * `normGroups` workgroups compute the output norm's partial sums instead (workgroup g sums
 * dot(v, v) over vec4 elements g·256 + lid, + normGroups·256, … of `outv`, a tree sum, f32 bits
 * at `normBase` + g) and the pair workgroups follow — one dispatch for both.
 */
export const telemetryPartialsWgsl = (norm = false): string => /* wgsl */ `
struct Params { tokens: u32, k: u32, slots: u32, experts: u32, srcBase: u32, teleBase: u32, partBase: u32, groups: u32, devices: u32, perPair: u32, width: u32, n4: u32, normBase: u32, normGroups: u32, _c: u32, _d: u32 };
${TELE_PAIR_BINDINGS}
${norm ? '@group(0) @binding(6) var<storage, read> outv: array<vec4<f32>>;' : ''}
@group(0) @binding(${norm ? 7 : 6}) var<storage, read_write> counters: array<atomic<u32>>;
@group(0) @binding(${norm ? 8 : 7}) var<uniform> params: Params;
${TELE_TOTALS}
${norm ? NORM_PARTIAL : ''}
${TELE_PARTIAL}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  ${linearWorkgroup}
${
  norm
    ? `  // workgroups 0 .. normGroups − 1: the output norm's partial sums (f32 bits at normBase + g)
  if (wgLinear < params.normGroups) {
    let s = normPartial(lid, wgLinear, params.normGroups);
    if (lid == 0u) { atomicStore(&counters[params.normBase + wgLinear], bitcast<u32>(s)); }
    return;
  }
  let g = wgLinear - params.normGroups;`
    : '  let g = wgLinear;'
}
  if (g >= params.groups) { return; }
  telePartial(lid, g, params.groups);
  let o = params.partBase + g * ${TELE_PART_WORDS}u;
  if (lid < 6u) { atomicStore(&counters[o + lid], atomicLoad(&sums[lid])); }
  if (lid == 6u) { atomicStore(&counters[o + 6u], bitcast<u32>(redA[0])); }
  if (lid == 7u) { atomicStore(&counters[o + 7u], bitcast<u32>(redB[0])); }
}`

/**
 * The batch's telemetry counts, second pass (one workgroup): sums the first pass's partials
 * in a fixed order (invocation i takes groups i, i + 256, …, then a tree sum) and writes the
 * telemetry block, with the output norm from the first pass's norm partials. Layout of
 * the block (u32 words of `counters` at `teleBase`): pairsBefore, pairsAfter, dropped, added,
 * fullyDropped, crossing, massBefore (f32), massKept (f32), outputNormSq (f32), 3 spare,
 * loadBefore[E] (left by the first pass), loadAfter[E].
 */
export const telemetryWgsl = (): string => /* wgsl */ `
struct Params { tokens: u32, experts: u32, teleBase: u32, partBase: u32, groups: u32, normBase: u32, normGroups: u32, _a: u32 };
@group(0) @binding(0) var<storage, read> counts: array<u32>;
@group(0) @binding(1) var<storage, read_write> counters: array<atomic<u32>>;
@group(0) @binding(2) var<uniform> params: Params;
${TELE_TOTALS}
${TELE_WRITE}
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
  var c = array<u32, 6>(0u, 0u, 0u, 0u, 0u, 0u);
  var a = 0.0;
  var m = 0.0;
  for (var g = lid; g < params.groups; g = g + 256u) {
    let o = params.partBase + g * ${TELE_PART_WORDS}u;
    for (var i = 0u; i < 6u; i = i + 1u) { c[i] = c[i] + atomicLoad(&counters[o + i]); }
    a = a + bitcast<f32>(atomicLoad(&counters[o + 6u]));
    m = m + bitcast<f32>(atomicLoad(&counters[o + 7u]));
  }
  for (var i = 0u; i < 6u; i = i + 1u) { atomicAdd(&sums[i], c[i]); }
  treeSum2(lid, a, m);
  var n = 0.0;
  if (lid == 0u) {
    for (var g = 0u; g < params.normGroups; g = g + 1u) { n = n + bitcast<f32>(atomicLoad(&counters[params.normBase + g])); }
  }
  teleWrite(lid, n);
}`

/**
 * The two telemetry passes (telemetry-partials with the output norm's partials, telemetry) as
 * one workgroup, for batches where the pair partials would take one workgroup and the norm at
 * most a few (see `fusedTelemetry` in grouping.program.ts): the norm partials of the first
 * pass's `normGroups` norm workgroups, one after the other over the same elements in the same
 * order, added in group order from +0 as the telemetry kernel adds them; the pair counts and the
 * block write of those kernels (the same WGSL functions) over workgroup 0 of 1. The block comes out bit for
 * bit as theirs: with one pair workgroup their second pass only adds +0 to each lone partial,
 * and these sums start at +0, so they are never −0 and the add leaves them unchanged.
 * Bindings: the first pass's six, counts, then `out` when `norm` (else outputNormSq is 0),
 * counters; no partials are written.
 */
export const telemetryFusedWgsl = (norm: boolean): string => /* wgsl */ `
struct Params { tokens: u32, k: u32, slots: u32, experts: u32, srcBase: u32, teleBase: u32, devices: u32, perPair: u32, width: u32, n4: u32, normGroups: u32, _b: u32 };
${TELE_PAIR_BINDINGS}
@group(0) @binding(6) var<storage, read> counts: array<u32>;
${norm ? '@group(0) @binding(7) var<storage, read> outv: array<vec4<f32>>;' : ''}
@group(0) @binding(${norm ? 8 : 7}) var<storage, read_write> counters: array<atomic<u32>>;
@group(0) @binding(${norm ? 9 : 8}) var<uniform> params: Params;
${TELE_TOTALS}
${norm ? NORM_PARTIAL : ''}
${TELE_PARTIAL}
${TELE_WRITE}
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
  var normSq = 0.0;
  ${norm ? 'for (var g = 0u; g < params.normGroups; g = g + 1u) { normSq = normSq + normPartial(lid, g, params.normGroups); }' : ''}
  telePartial(lid, 0u, 1u);
  teleWrite(lid, normSq);
}`

/** Words of the telemetry block for E experts. */
export const teleWords = (experts: number): number => 12 + 2 * experts
