/**
 * The GPU lowering of `capacity-drop` (Token Drop): the decisions of {@link tokenDrop} on the
 * device, for every priority, both scopes and every renormalisation. Three passes over core's
 * POLICY_PRELUDE:
 * 1. `ordinals` (random priority only): the ordinal of each token's first pair (the host draws
 *    one number per pair in token then slot order, so pair n's key is `mulberry32At(seed, n)`);
 * 2. `select`: one workgroup per expert; per capacity group (the batch, or each source device)
 *    the expert's pairs are compacted in token order and each is kept when fewer than C pairs
 *    beat it (key descending, then token, then slot: the host's stable sort);
 * 3. `emit`: one invocation per token writes the kept pairs with their final weights, counts
 *    the drops, and puts the slots in canonical order.
 */
import { f32Bits, type LoweringContext, type StageBatch, type WgslStage } from '@moe-route/core'
import type { CapacityDropOptions } from './capacity-drop.schema.js'
import { capacityOf } from './shared/scope.js'

const PRIORITY = { score: 0, first: 1, last: 2, random: 3 } as const
const RENORM = { none: 0, 'model-native': 1, kept: 2 } as const

/** Source devices whose capacities fit the stage parameters (beyond them the policy runs on the host). */
export const MAX_LOWERED_SOURCE_DEVICES = 10

/** Shared WGSL of the capacity family: keys, the per-expert keep rule and renormalisation. */
export const capacityFamilyWgsl = /* wgsl */ `
const WG = 256u;
var<workgroup> scanBuf: array<u32, 256>;
var<workgroup> nShared: u32;
fn exclusiveScan(v: u32, lid: u32) -> vec2<u32> {
  scanBuf[lid] = v;
  workgroupBarrier();
  for (var s = 1u; s < 256u; s = s << 1u) {
    let add = select(0u, scanBuf[max(lid, s) - s], lid >= s);
    workgroupBarrier();
    scanBuf[lid] = scanBuf[lid] + add;
    workgroupBarrier();
  }
  let incl = scanBuf[lid];
  let total = scanBuf[255];
  workgroupBarrier();
  return vec2<u32>(incl - v, total);
}
// Priority codes: 0 score, 1 first (earlier tokens win), 2 last, 3 random (seeded draws).
fn drawOf(p: u32, ordBase: u32) -> u32 {
  let t = p / dims.slotsIn;
  return mulberry32At(dims.seed, scratch[ordBase + t] + p % dims.slotsIn);
}
// True when pair b is kept before pair a at expert e (key desc, token asc, then pair order).
fn beats(pb: u32, pa: u32, e: u32, priority: u32, ordBase: u32) -> bool {
  let tb = pb / dims.slotsIn;
  let ta = pa / dims.slotsIn;
  if (priority == 0u) {
    let sb = score(tb, e);
    let sa = score(ta, e);
    if (sb != sa) { return sb > sa; }
  } else if (priority == 2u) {
    if (tb != ta) { return tb > ta; }
  } else if (priority == 3u) {
    let db = drawOf(pb, ordBase);
    let da = drawOf(pa, ordBase);
    if (db != da) { return db > da; }
  }
  if (tb != ta) { return tb < ta; }
  return pb < pa;
}
// Exclusive prefix over tokens of their pair counts into scratch[ordBase + t] (one workgroup).
fn pairOrdinals(lid: u32, ordBase: u32) {
  var run = 0u;
  for (var b = 0u; b < dims.tokens; b = b + WG) {
    let t = b + lid;
    var n = 0u;
    if (t < dims.tokens) { n = pairsIn(t); }
    let r = exclusiveScan(n, lid);
    if (t < dims.tokens) { scratch[ordBase + t] = run + r.x; }
    run = run + r.y;
  }
}
// Keeps at most cap pairs of expert e among the tokens of source device dev (all tokens when
// dev == 0xffffffff): sets scratch[flagBase + p] = 1 for each kept pair p. Uniform control flow.
fn keepWithinCapacity(e: u32, dev: u32, cap: u32, priority: u32, lid: u32, flagBase: u32, candBase: u32, ordBase: u32) {
  let P = dims.tokens * dims.slotsIn;
  var n = 0u;
  for (var b = 0u; b < P; b = b + WG) {
    let p = b + lid;
    var flag = false;
    if (p < P) {
      let t = p / dims.slotsIn;
      flag = idsIn[p] == i32(e) && (dev == 0xffffffffu || srcDevice(t) == dev);
    }
    let r = exclusiveScan(select(0u, 1u, flag), lid);
    if (flag) { scratch[candBase + n + r.x] = p; }
    n = n + r.y;
  }
  storageBarrier();
  for (var i = lid; i < n; i = i + WG) {
    let pa = scratch[candBase + i];
    var rank = 0u;
    if (n > cap) {
      for (var j = 0u; j < n; j = j + 1u) {
        if (j == i) { continue; }
        if (beats(scratch[candBase + j], pa, e, priority, ordBase)) {
          rank = rank + 1u;
          if (rank >= cap) { break; }
        }
      }
    }
    if (rank < cap) { scratch[flagBase + pa] = 1u; }
  }
  storageBarrier();
}
// Final weight of kept pair (t, j) under a renormalisation mode (0 none, 1 model-native, 2 kept).
fn renormalized(t: u32, j: u32, mode: u32, keptSum: f32) -> f32 {
  let w = weightIn(t, j);
  if (mode == 0u) { return w; }
  if (mode == 2u) { return select(0.0, w / keptSum, keptSum > 0.0); }
  let e = u32(idIn(t, j));
  var den = 1.0;
  if (dims.normalizeTopK == 1u) {
    var s = 0.0;
    for (var i = 0u; i < dims.slotsIn; i = i + 1u) {
      let ei = idIn(t, i);
      if (ei >= 0) { s = s + score(t, u32(ei)); }
    }
    den = select(1.0, s, s > 0.0);
  }
  return score(t, e) / den;
}
// Writes token t's kept pairs (scratch[flagBase + p] == 1) with their weights, -1 after them;
// counts the dropped pairs; canonical slot order.
fn emitKept(t: u32, mode: u32, flagBase: u32) -> u32 {
  let S = dims.slotsIn;
  var keptSum = 0.0;
  for (var j = 0u; j < S; j = j + 1u) {
    if (idIn(t, j) >= 0 && scratch[flagBase + t * S + j] == 1u) { keptSum = keptSum + weightIn(t, j); }
  }
  var o = 0u;
  var dropped = 0u;
  for (var j = 0u; j < S; j = j + 1u) {
    let e = idIn(t, j);
    if (e < 0) { continue; }
    if (scratch[flagBase + t * S + j] == 1u) {
      idsOut[t * dims.slotsOut + o] = e;
      wOut[t * dims.slotsOut + o] = renormalized(t, j, mode, keptSum);
      o = o + 1u;
    } else {
      dropped = dropped + 1u;
    }
  }
  for (var j = o; j < dims.slotsOut; j = j + 1u) {
    idsOut[t * dims.slotsOut + j] = -1;
    wOut[t * dims.slotsOut + j] = 0.0;
  }
  canonicalizeToken(t);
  return dropped;
}
// Copies token t unchanged (a skipped batch).
fn copyToken(t: u32) {
  for (var j = 0u; j < dims.slotsOut; j = j + 1u) {
    if (j < dims.slotsIn) { idsOut[t * dims.slotsOut + j] = idIn(t, j); wOut[t * dims.slotsOut + j] = weightIn(t, j); }
    else { idsOut[t * dims.slotsOut + j] = -1; wOut[t * dims.slotsOut + j] = 0.0; }
  }
}
`

// params: 0 priority, 1 renormalize, 2 skip (decode batch left alone), 3 per-source (0/1),
// 4 capacity (global), 5.. capacity of source device d (0xffffffff: no tokens there)
const code = /* wgsl */ `
${capacityFamilyWgsl}
fn flagBase() -> u32 { return 0u; }
fn ordBase() -> u32 { return dims.tokens * dims.slotsIn; }
fn candBase(e: u32) -> u32 { return ordBase() + dims.tokens + e * dims.tokens * dims.slotsIn; }

@compute @workgroup_size(256)
fn ordinals(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  stageBegin(wid, nwg, lid);
  pairOrdinals(lid, ordBase());
}

@compute @workgroup_size(256)
fn select_(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  stageBegin(wid, nwg, lid);
  if (param(2u) == 1u) { return; }
  let e = workgroupIndex();
  // the host reports a capacity (0 when no group has tokens) whenever it acts
  if (lid == 0u && e == 0u) { statMax(STAT_HAS_CAPACITY, 1u); }
  if (param(3u) == 0u) {
    keepWithinCapacity(e, 0xffffffffu, param(4u), param(0u), lid, flagBase(), candBase(e), ordBase());
    if (lid == 0u && e == 0u) { statMax(STAT_CAPACITY, param(4u)); }
    return;
  }
  for (var d = 0u; d < dims.devices; d = d + 1u) {
    let cap = param(5u + d);
    if (cap == 0xffffffffu) { continue; }
    keepWithinCapacity(e, d, cap, param(0u), lid, flagBase(), candBase(e), ordBase());
    if (lid == 0u && e == 0u) { statMax(STAT_CAPACITY, cap); }
  }
}

@compute @workgroup_size(64)
fn emit(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  stageBegin(wid, nwg, lid);
  let t = workgroupIndex() * 64u + lid;
  if (t == 0u && param(2u) == 1u) { stat(STAT_SKIPPED, 1u); }
  if (t >= dims.tokens) { return; }
  if (param(2u) == 1u) { copyToken(t); return; }
  let dropped = emitKept(t, param(1u), flagBase());
  if (dropped > 0u) { stat(STAT_DROPPED, dropped); }
}
`

/**
 * The WGSL stage of `capacity-drop` with `options`, or null where the options need the host
 * (per-source-device scope over more than {@link MAX_LOWERED_SOURCE_DEVICES} devices).
 * @example
 * const stage = capacityDropStage({ ...defaultOptions, capacityFactor: 1.0 }, ctx)
 */
export function capacityDropStage(options: CapacityDropOptions, ctx: LoweringContext): WgslStage | null {
  const perSource = options.scope === 'per-source-device'
  if (perSource && ctx.devices > MAX_LOWERED_SOURCE_DEVICES) return null
  const { topK, experts } = ctx.model
  const random = options.priority === 'random'
  return {
    kind: 'wgsl',
    key: 'capacity-drop',
    code,
    passes: [
      ...(random ? [{ entryPoint: 'ordinals', workgroupSize: 256, workgroups: () => 1 }] : []),
      { entryPoint: 'select_', workgroupSize: 256, workgroups: () => experts },
      { entryPoint: 'emit', workgroupSize: 64, workgroups: (b: StageBatch) => Math.max(1, Math.ceil(b.tokens / 64)) },
    ],
    scratchWords: (b) => b.tokens * ctx.slotsIn + b.tokens + experts * b.tokens * ctx.slotsIn,
    params: (b) => {
      const skip = b.decode && !options.applyToDecode
      const w = [PRIORITY[options.priority], RENORM[options.renormalize], skip ? 1 : 0, perSource ? 1 : 0]
      if (!perSource || !b.sourceTokens) {
        // per-source scope without source devices: every token on device 0
        const C = capacityOf(options.capacityFactor, b.tokens, topK, experts, options.rounding)
        if (perSource) return [...w.slice(0, 3), 1, 0, C, ...new Array<number>(Math.max(0, ctx.devices - 1)).fill(0xffffffff)]
        return [...w, C]
      }
      return [...w, 0, ...b.sourceTokens.map((n) => (n > 0 ? capacityOf(options.capacityFactor, n, topK, experts, options.rounding) : 0xffffffff))]
    },
    skippedReason: 'decode batch (one token per sequence): not capped because applyToDecode is false',
    dropReason: 'capacity',
  }
}

void f32Bits
