/**
 * Row offsets of the expert groups on the device (exact sizes or padded to a capacity), the
 * list of non-empty experts, the weight slot table and the GEMM grid: what the expert kernels
 * read. The grouping itself (which pairs land in which rows) is pipeline/grouping.wgsl.ts.
 */
import { WORKGROUP_SCAN_WGSL } from '@moe-route/core'

const SCAN = WORKGROUP_SCAN_WGSL

/**
 * WGSL of the offsets logic, shared by the offsets kernel and the fused small-batch grouping
 * (pipeline/grouping.wgsl.ts): `fn writeOffsets(lid, E, size, colsGateUp, colsDown, bm, bn,
 * bnDown) -> u32` takes expert `lid`'s group size (0 for lid ≥ E) and writes, over
 * module-scope bindings `offsets: array<i32>` and `args: array<u32>`: the exclusive scan of
 * the sizes (offsets[0 ..= E]), the list of non-empty experts in ascending id at
 * offsets[E+1 ..= 2E] (−1 past the last; the decode kernels launch one workgroup row per list
 * slot, not per expert), the weight slot of each expert at offsets[2E+1 ..] (the identity; a
 * device pipeline with an expert store overwrites it with the store's slots), and the
 * indirect GEMM grid args = [gx gate-up, gy, E, gx down, gy, E, rows, maxRows] (gx from
 * column tiles of `bn` (gate+up) and `bnDown` (down)). Returns expert lid's first row.
 * Needs `exclusiveScan` (core's WORKGROUP_SCAN_WGSL); E ≤ 256; call once, from uniform
 * control flow of a 256-invocation workgroup.
 */
export const OFFSETS_FN_WGSL = /* wgsl */ `
var<workgroup> offsetsMaxRows: atomic<u32>;
fn writeOffsets(lid: u32, E: u32, size: u32, colsGateUp: u32, colsDown: u32, bm: u32, bn: u32, bnDown: u32) -> u32 {
  atomicMax(&offsetsMaxRows, size);
  let r = exclusiveScan(size, lid);
  if (lid < E) { offsets[lid] = i32(r.x); offsets[2u * E + 1u + lid] = i32(lid); }
  let live = lid < E && size > 0u;
  let a = exclusiveScan(select(0u, 1u, live), lid);
  // live experts fill list slots 0 .. a.y − 1; every slot a.y .. E − 1 gets −1, whoever's lid it
  // is (a live expert's own slot past the list too: the buffer is pooled, stale entries there
  // would launch decode workgroups on garbage expert ids)
  if (live) { offsets[E + 1u + a.x] = i32(lid); }
  if (lid >= a.y && lid < E) { offsets[E + 1u + lid] = -1; }
  let mx = atomicLoad(&offsetsMaxRows);
  if (lid == 0u) {
    offsets[E] = i32(r.y);
    let gy = (mx + bm - 1u) / bm;
    args[0] = (colsGateUp + bn - 1u) / bn;
    args[1] = gy;
    args[2] = E;
    args[3] = (colsDown + bnDown - 1u) / bnDown;
    args[4] = gy;
    args[5] = E;
    args[6] = r.y;
    args[7] = mx;
  }
  return r.x;
}`

/**
 * Row offsets, the non-empty expert list, the weight slot table and the GEMM grid
 * ({@link OFFSETS_FN_WGSL}) from group sizes: the kept counts, or the capacity for every
 * expert when static. One workgroup, E ≤ 256.
 */
export const offsetsWgsl = (): string => /* wgsl */ `
struct Params { experts: u32, isStatic: u32, capacity: u32, colsGateUp: u32, colsDown: u32, bm: u32, bn: u32, bnDown: u32 };
@group(0) @binding(0) var<storage, read> counts: array<u32>;
@group(0) @binding(1) var<storage, read_write> offsets: array<i32>;
@group(0) @binding(2) var<storage, read_write> args: array<u32>;
@group(0) @binding(3) var<uniform> params: Params;
${SCAN}
${OFFSETS_FN_WGSL}
@compute @workgroup_size(256)
fn main(@builtin(local_invocation_index) lid: u32) {
  let E = params.experts;
  var size = 0u;
  if (lid < E) { size = select(counts[lid], params.capacity, params.isStatic == 1u); }
  writeOffsets(lid, E, size, params.colsGateUp, params.colsDown, params.bm, params.bn, params.bnDown);
}`
