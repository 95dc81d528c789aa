/**
 * The GPU lowering of `spare-capacity-reroute`: the decisions of
 * {@link applySpareCapacityReroute} on the device. Four passes over core's POLICY_PRELUDE and
 * the capacity family's shared WGSL:
 * 1. `cut`: one workgroup per expert; per capacity group the expert's pairs beyond C (by
 *    score, then token) are marked overflow and the expert's spare room is recorded;
 * 2. `rank`: one invocation per (token, expert) of tokens with overflow: the token's experts
 *    in score order (descending, then expert), the first `maxRank`;
 * 3. `assign`: one workgroup per capacity group runs the host's greedy (overflow pairs best
 *    score first, each to its token's best expert with room) exactly, in parallel rounds: every
 *    pending pair proposes, given the committed rooms, the expert it would take if every pair
 *    before it took its own proposal (a token's i-th pending pair takes its i-th best expert
 *    with room); the longest prefix of pending pairs, in visit order, whose proposals fit the
 *    rooms is committed. A proposal can only be wrong after an earlier one filled its expert,
 *    so each round commits at least one pair and fills an expert, or finishes: at most E + 1
 *    rounds;
 * 4. `emit`: one invocation per token writes its kept and moved pairs with their weights
 *    (input weight, or model-native for a moved pair; then the renormalisation), counts moved
 *    and dropped pairs, and orders the slots.
 */
import type { LoweringContext, StageBatch, WgslStage } from '@moe-route/core'
import { capacityCutWgsl, capacityFamilyWgsl, DECODE_SKIPPED, groupCapacityParams, maxLoweredGroups, RENORMALIZE_CODES } from '../shared/index.js'
import type { SpareCapacityRerouteOptions } from './spare-capacity-reroute.schema.js'

/** Source devices whose capacities fit the stage parameters (beyond them the policy runs on the host). */
export const MAX_LOWERED_SOURCE_DEVICES = maxLoweredGroups(1)

// scratch (P = T·S pairs, D = devices): overflow flags (P), spare room per group and expert
// (D × E), the ranked experts of each token (T × E), each group's overflow pairs (D × P) and
// the same in visit order (D × P), then per pair its visit position, proposal, status
// (0 pending, 1 moved, 2 dropped) and destination (4 × P), then the cut's candidate lists
// (E × P). params: 0 skip, 1.. capacity groups.
const code = (renorm: number, maxRank: number) => /* wgsl */ `
${capacityFamilyWgsl}
const RENORM = ${renorm}u;
const MAX_RANK = ${maxRank}u;
const NONE = 0xffffffffu;
var<workgroup> roomW: array<atomic<u32>, 256>;
var<workgroup> proposedW: array<atomic<u32>, 256>;
var<workgroup> chunkE: array<u32, 256>;
var<workgroup> firstBadA: atomic<u32>;
fn P() -> u32 { return dims.tokens * dims.slotsIn; }
fn overAt(p: u32) -> u32 { return p; }
fn roomAt(g: u32, e: u32) -> u32 { return P() + g * dims.experts + e; }
fn orderAt(t: u32, r: u32) -> u32 { return P() + dims.devices * dims.experts + t * dims.experts + r; }
fn listAt(g: u32, x: u32) -> u32 { return P() + dims.devices * dims.experts + dims.tokens * dims.experts + g * P() + x; }
fn sortedAt(g: u32, x: u32) -> u32 { return listAt(dims.devices, 0u) + g * P() + x; }
fn posAt(p: u32) -> u32 { return sortedAt(dims.devices, 0u) + p; }
fn propAt(p: u32) -> u32 { return posAt(P()) + p; }
fn statusAt(p: u32) -> u32 { return propAt(P()) + p; }
fn toAt(p: u32) -> u32 { return statusAt(P()) + p; }
fn candBase(e: u32) -> u32 { return toAt(P()) + e * P(); }
fn limit() -> u32 { return select(dims.experts, min(dims.experts, MAX_RANK), MAX_RANK > 0u); }
${capacityCutWgsl({
  name: 'cutExpert',
  params: 'e: u32, dev: u32, cap: u32, lid: u32, candBase: u32',
  items: 'P()',
  candidate: 'idsIn[i] == i32(e) && inGroup(i / dims.slotsIn, dev)',
  // score, then token (one pair per token at an expert): the host's compareKeyed
  beats: 'scoreBeats(ib / dims.slotsIn, ia / dims.slotsIn, e)',
  over: 'scratch[overAt(i)] = 1u;',
})}
// Visit order of overflow pairs: score at their expert descending, then token, then expert.
fn visitsBefore(pb: u32, pa: u32) -> bool {
  let tb = pb / dims.slotsIn;
  let ta = pa / dims.slotsIn;
  let eb = u32(idsIn[pb]);
  let ea = u32(idsIn[pa]);
  let sb = score(tb, eb);
  let sa = score(ta, ea);
  if (sb != sa) { return sb > sa; }
  if (tb != ta) { return tb < ta; }
  return eb < ea;
}
// Token t already computes expert e: an input pair, or a pair moved there.
fn isMine(t: u32, e: u32) -> bool {
  for (var j = 0u; j < dims.slotsIn; j = j + 1u) {
    let p = t * dims.slotsIn + j;
    if (idsIn[p] == i32(e)) { return true; }
    if (scratch[statusAt(p)] == 1u && scratch[toAt(p)] == e) { return true; }
  }
  return false;
}

@compute @workgroup_size(256)
fn cut(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  stageBegin(wid, nwg, lid);
  if (param(0u) == 1u) { return; }
  let e = workgroupIndex();
  if (lid == 0u && e == 0u) { statMax(STAT_HAS_CAPACITY, 1u); }
  for (var g = 0u; g < capGroups(1u); g = g + 1u) {
    let cap = capGroupCap(1u, g);
    if (cap == 0xffffffffu) { continue; }
    let n = cutExpert(e, capGroupDevice(1u, g), cap, lid, candBase(e));
    if (lid == 0u) {
      scratch[roomAt(g, e)] = cap - min(n, cap);
      if (e == 0u) { statMax(STAT_CAPACITY, cap); }
    }
  }
}

@compute @workgroup_size(256)
fn rank(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  stageBegin(wid, nwg, lid);
  let x = workgroupIndex() * 256u + lid;
  if (param(0u) == 1u || x >= dims.tokens * dims.experts) { return; }
  let t = x / dims.experts;
  let e = x % dims.experts;
  var over = false;
  for (var j = 0u; j < dims.slotsIn; j = j + 1u) { over = over || scratch[overAt(t * dims.slotsIn + j)] == 1u; }
  if (!over) { return; }
  let s = score(t, e);
  var r = 0u;
  for (var y = 0u; y < dims.experts; y = y + 1u) {
    let sy = score(t, y);
    if (sy > s || (sy == s && y < e)) { r = r + 1u; }
  }
  if (r < limit()) { scratch[orderAt(t, r)] = e; }
}

@compute @workgroup_size(256)
fn assign(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  stageBegin(wid, nwg, lid);
  let g = wid.y * nwg.x + wid.x;
  if (param(0u) == 1u || g >= capGroups(1u) || capGroupCap(1u, g) == 0xffffffffu) { return; }
  // the group's overflow pairs, in pair order
  var n = 0u;
  for (var b = 0u; b < P(); b = b + WG) {
    let p = b + lid;
    var flag = false;
    if (p < P()) { flag = scratch[overAt(p)] == 1u && tokenGroup(1u, p / dims.slotsIn) == g; }
    let r = exclusiveScan(select(0u, 1u, flag), lid);
    if (flag) { scratch[listAt(g, n + r.x)] = p; }
    n = n + r.y;
  }
  let O = uniformOf(n, lid);
  storageBarrier();
  // visit positions (the host sorts the overflow pairs with compareKeyed)
  for (var x = lid; x < O; x = x + WG) {
    let pa = scratch[listAt(g, x)];
    var pos = 0u;
    for (var y = 0u; y < O; y = y + 1u) {
      if (y != x && visitsBefore(scratch[listAt(g, y)], pa)) { pos = pos + 1u; }
    }
    scratch[sortedAt(g, pos)] = pa;
    scratch[posAt(pa)] = pos;
  }
  for (var e = lid; e < dims.experts; e = e + WG) { atomicStore(&roomW[e], scratch[roomAt(g, e)]); }
  storageBarrier();
  workgroupBarrier();
  loop {
    // proposals of the pending pairs, given the committed rooms
    for (var x = lid; x < O; x = x + WG) {
      let p = scratch[sortedAt(g, x)];
      if (scratch[statusAt(p)] != 0u) { continue; }
      let t = p / dims.slotsIn;
      var before = 0u;
      for (var j = 0u; j < dims.slotsIn; j = j + 1u) {
        let q = t * dims.slotsIn + j;
        if (q != p && scratch[overAt(q)] == 1u && scratch[statusAt(q)] == 0u && scratch[posAt(q)] < x) { before = before + 1u; }
      }
      var pick = NONE;
      var seen = 0u;
      for (var r = 0u; r < limit(); r = r + 1u) {
        let e = scratch[orderAt(t, r)];
        if (atomicLoad(&roomW[e]) == 0u || isMine(t, e)) { continue; }
        if (seen == before) { pick = e; break; }
        seen = seen + 1u;
      }
      scratch[propAt(p)] = pick;
    }
    if (lid == 0u) { atomicStore(&firstBadA, NONE); }
    for (var e = lid; e < dims.experts; e = e + WG) { atomicStore(&proposedW[e], 0u); }
    storageBarrier();
    workgroupBarrier();
    // the first pending pair whose proposal finds its expert filled by earlier proposals
    var firstBad = NONE;
    for (var c = 0u; c < O; c = c + WG) {
      let x = c + lid;
      var mine = NONE;
      if (x < O) {
        let p = scratch[sortedAt(g, x)];
        if (scratch[statusAt(p)] == 0u) { mine = scratch[propAt(p)]; }
      }
      chunkE[lid] = mine;
      workgroupBarrier();
      if (mine != NONE) {
        var earlier = atomicLoad(&proposedW[mine]);
        for (var y = 0u; y < lid; y = y + 1u) { if (chunkE[y] == mine) { earlier = earlier + 1u; } }
        if (earlier >= atomicLoad(&roomW[mine])) { atomicMin(&firstBadA, x); }
      }
      workgroupBarrier();
      if (mine != NONE) { atomicAdd(&proposedW[mine], 1u); }
      firstBad = uniformOf(atomicLoad(&firstBadA), lid);
      if (firstBad != NONE) { break; }
    }
    // commit every pending pair before it
    for (var x = lid; x < min(firstBad, O); x = x + WG) {
      let p = scratch[sortedAt(g, x)];
      if (scratch[statusAt(p)] != 0u) { continue; }
      let pick = scratch[propAt(p)];
      if (pick == NONE) {
        scratch[statusAt(p)] = 2u;
      } else {
        scratch[statusAt(p)] = 1u;
        scratch[toAt(p)] = pick;
        atomicSub(&roomW[pick], 1u);
      }
    }
    storageBarrier();
    workgroupBarrier();
    if (firstBad == NONE) { break; }
  }
}

@compute @workgroup_size(64)
fn emit(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  stageBegin(wid, nwg, lid);
  let t = workgroupIndex() * 64u + lid;
  if (!emitBegin(t, param(0u) == 1u)) { return; }
  let den = nativeDenominator(t);
  // the weights before renormalisation: input weight when kept, model-native when moved
  var sum = 0.0;
  for (var j = 0u; j < dims.slotsIn; j = j + 1u) {
    let p = t * dims.slotsIn + j;
    if (idsIn[p] < 0) { continue; }
    if (scratch[overAt(p)] == 0u) { sum = sum + weightIn(t, j); }
    else if (scratch[statusAt(p)] == 1u) { sum = sum + score(t, scratch[toAt(p)]) / den; }
  }
  var o = 0u;
  var moved = 0u;
  var dropped = 0u;
  for (var j = 0u; j < dims.slotsIn; j = j + 1u) {
    let p = t * dims.slotsIn + j;
    let e = idsIn[p];
    if (e < 0) { continue; }
    var to = u32(e);
    var w = weightIn(t, j);
    if (scratch[overAt(p)] == 1u) {
      if (scratch[statusAt(p)] != 1u) { dropped = dropped + 1u; continue; }
      to = scratch[toAt(p)];
      w = score(t, to) / den;
      moved = moved + 1u;
    }
    idsOut[t * dims.slotsOut + o] = i32(to);
    wOut[t * dims.slotsOut + o] = renormalizedAs(w, score(t, to) / den, RENORM, sum);
    o = o + 1u;
  }
  clearFrom(t, o);
  canonicalizeToken(t);
  if (moved > 0u) { stat(STAT_REROUTED, moved); }
  if (dropped > 0u) { stat(STAT_DROPPED, dropped); }
}
`

/**
 * The WGSL stage of `spare-capacity-reroute` with `options`, or null where the options need
 * the host (per-source-device scope over more than {@link MAX_LOWERED_SOURCE_DEVICES} devices).
 * @example
 * const stage = spareCapacityRerouteStage({ ...defaultOptions, maxRank: 4 }, ctx)
 */
export function spareCapacityRerouteStage(options: SpareCapacityRerouteOptions, ctx: LoweringContext): WgslStage | null {
  const perSource = options.scope === 'per-source-device'
  if (perSource && ctx.devices > MAX_LOWERED_SOURCE_DEVICES) return null
  const E = ctx.model.experts
  const S = ctx.slotsIn
  const D = ctx.devices
  const renorm = RENORMALIZE_CODES[options.renormalize]
  const maxRank = options.maxRank ?? 0
  return {
    kind: 'wgsl',
    key: `spare-capacity-reroute|${renorm}|${maxRank}`,
    code: code(renorm, maxRank),
    passes: [
      { entryPoint: 'cut', workgroupSize: 256, workgroups: () => E },
      { entryPoint: 'rank', workgroupSize: 256, workgroups: (b: StageBatch) => Math.max(1, Math.ceil((b.tokens * E) / 256)) },
      { entryPoint: 'assign', workgroupSize: 256, workgroups: () => (perSource ? D : 1) },
      { entryPoint: 'emit', workgroupSize: 64, workgroups: (b: StageBatch) => Math.max(1, Math.ceil(b.tokens / 64)) },
    ],
    scratchWords: (b) => {
      const P = b.tokens * S
      return P + D * E + b.tokens * E + 2 * D * P + 4 * P + E * P
    },
    params: (b) => [b.decode && !options.applyToDecode ? 1 : 0, ...groupCapacityParams(options, ctx, b)],
    skippedReason: DECODE_SKIPPED,
    dropReason: 'reroute-exhausted',
    moves: 'by-score',
  }
}
