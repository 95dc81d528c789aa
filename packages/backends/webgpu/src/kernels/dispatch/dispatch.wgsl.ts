/**
 * Row offsets of the expert groups on the device (exact sizes or padded to a capacity), the
 * list of non-empty experts, the weight slot table and the GEMM grid: what the expert kernels
 * read. The grouping itself (which pairs land in which rows) is pipeline/grouping.wgsl.ts.
 */
import { WORKGROUP_SCAN_WGSL } from '@moe-route/core'

const SCAN = WORKGROUP_SCAN_WGSL

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
  // live experts fill list slots 0 .. a.y − 1; every slot a.y .. E − 1 gets −1, whoever's lid it
  // is (a live expert's own slot past the list too: the buffer is pooled, stale entries there
  // would launch decode workgroups on garbage expert ids)
  if (live) { offsets[E + 1u + a.x] = i32(lid); }
  if (lid >= a.y && lid < E) { offsets[E + 1u + lid] = -1; }
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
