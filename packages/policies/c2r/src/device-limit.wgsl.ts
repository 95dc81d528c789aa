/**
 * The GPU lowering of `device-limit` (Occult's router-score pruning): the decisions of
 * {@link limitDevices} on the device, over core's POLICY_PRELUDE. One invocation per token:
 * 1. walk the token's experts by router score (descending, then expert ascending: repeated
 *    selection of the best one after the previous) and mark their primary devices allowed
 *    until `maxDevices` are (a bitmask of up to {@link MAX_LOWERED_DEVICES} devices);
 * 2. k passes over all experts (k = the token's pair count), each taking the best expert on an
 *    allowed device after the previous pick — the host's insertion keeps exactly these;
 * 3. weights: the kept experts' raw scores, or their share of the kept sum when the model
 *    renormalises (`dims.normalizeTopK`); slots in the host's order (score descending);
 * 4. statistics: kept experts that were not in the input were moved there (STAT_REROUTED),
 *    the other removed ones dropped (STAT_DROPPED, reason `pruned`). The full detail pairs
 *    removed and added experts by score (`moves: 'by-score'`), as the host does.
 */
import type { LoweringContext, StageBatch, WgslStage } from '@moe-route/core'

/** Devices the allowed-device bitmask holds (beyond them the policy runs on the host). */
export const MAX_LOWERED_DEVICES = 256

const WG = 64

// params: 0 maxDevices
const code = /* wgsl */ `
fn primaryDevice(e: u32) -> u32 { return replicaDevice(e, 0u); }
fn isAllowed(mask: ptr<function, array<u32, ${MAX_LOWERED_DEVICES / 32}>>, e: u32) -> bool {
  let d = primaryDevice(e);
  return ((*mask)[d / 32u] & (1u << (d % 32u))) != 0u;
}

@compute @workgroup_size(${WG})
fn prune(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  stageBegin(wid, nwg, lid);
  let t = workgroupIndex() * ${WG}u + lid;
  if (t >= dims.tokens) { return; }
  let S = dims.slotsIn;
  let E = dims.experts;
  let maxD = param(0u);
  // 1. allowed devices: the token's experts by score, their devices until maxD are allowed
  var mask: array<u32, ${MAX_LOWERED_DEVICES / 32}>;
  var nAllowed = 0u;
  var prevS = 0.0;
  var prevI = -1;
  for (var step = 0u; step < S; step = step + 1u) {
    if (nAllowed >= maxD) { break; }
    var best = -1;
    var bestS = 0.0;
    for (var j = 0u; j < S; j = j + 1u) {
      let e = idIn(t, j);
      if (e < 0) { continue; }
      let s = score(t, u32(e));
      let after = step == 0u || s < prevS || (s == prevS && e > prevI);
      if (after && (best < 0 || s > bestS || (s == bestS && e < best))) { best = e; bestS = s; }
    }
    if (best < 0) { break; }
    if (!isAllowed(&mask, u32(best))) {
      let d = primaryDevice(u32(best));
      mask[d / 32u] = mask[d / 32u] | (1u << (d % 32u));
      nAllowed = nAllowed + 1u;
    }
    prevS = bestS;
    prevI = best;
  }
  // 2. the k best experts on allowed devices
  let k = pairsIn(t);
  let o = t * dims.slotsOut;
  var n = 0u;
  var sum = 0.0;
  prevS = 0.0;
  prevI = -1;
  for (var j = 0u; j < k; j = j + 1u) {
    var best = -1;
    var bestS = 0.0;
    for (var e = 0u; e < E; e = e + 1u) {
      if (!isAllowed(&mask, e)) { continue; }
      let s = score(t, e);
      let after = j == 0u || s < prevS || (s == prevS && i32(e) > prevI);
      if (after && (best < 0 || s > bestS)) { best = i32(e); bestS = s; }
    }
    if (best < 0) { break; }
    idsOut[o + n] = best;
    wOut[o + n] = bestS;
    sum = sum + bestS;
    n = n + 1u;
    prevS = bestS;
    prevI = best;
  }
  // 3. weights, empty slots
  if (dims.normalizeTopK == 1u) {
    for (var j = 0u; j < n; j = j + 1u) { wOut[o + j] = select(1.0 / f32(n), wOut[o + j] / sum, sum > 0.0); }
  }
  for (var j = n; j < dims.slotsOut; j = j + 1u) {
    idsOut[o + j] = -1;
    wOut[o + j] = 0.0;
  }
  // 4. moved (kept but new) and dropped (removed beyond the moved) pairs
  var added = 0u;
  for (var j = 0u; j < n; j = j + 1u) {
    var was = false;
    for (var i = 0u; i < S; i = i + 1u) { if (idIn(t, i) == idsOut[o + j]) { was = true; } }
    if (!was) { added = added + 1u; }
  }
  var removed = 0u;
  for (var i = 0u; i < S; i = i + 1u) {
    let e = idIn(t, i);
    if (e < 0) { continue; }
    var kept = false;
    for (var j = 0u; j < n; j = j + 1u) { if (idsOut[o + j] == e) { kept = true; } }
    if (!kept) { removed = removed + 1u; }
  }
  if (added > 0u) { stat(STAT_REROUTED, added); }
  if (removed > added) { stat(STAT_DROPPED, removed - added); }
}
`

/**
 * The WGSL stage of `device-limit` with N_d = `maxDevices`, or null where the placement has
 * more than {@link MAX_LOWERED_DEVICES} devices (the policy then runs on the host).
 * @example
 * const stage = deviceLimitStage(2, ctx)
 */
export function deviceLimitStage(maxDevices: number, ctx: LoweringContext): WgslStage | null {
  if (ctx.placement.devices > MAX_LOWERED_DEVICES) return null
  return {
    kind: 'wgsl',
    key: `device-limit|wg=${WG}`,
    code,
    passes: [{ entryPoint: 'prune', workgroupSize: WG, workgroups: (b: StageBatch) => Math.ceil(b.tokens / WG) }],
    params: () => [maxDevices],
    dropReason: 'pruned',
    moves: 'by-score',
  }
}
