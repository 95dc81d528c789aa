/**
 * The GPU lowering of `reroute`: the decisions of {@link applyReroute} (SPEC A.4, the intended
 * multi-round algorithm) on the device. Each (token, expert) has a state word: 0 free,
 * 1 selected input pair, 3 selected by a refill, 2 banned (cut at that expert). Passes over
 * core's POLICY_PRELUDE and the capacity family's shared WGSL:
 * 1. `cut` (round 1): one workgroup per expert; per capacity group the expert's input pairs
 *    are ranked by score (then token) and every pair beyond C is banned, marking the group's
 *    round as overflowing;
 * 2. per later round r ≤ R, `refill` (one invocation per token: a token of a group whose round
 *    r − 1 overflowed takes its next-best free experts up to its input pair count) then `cut`
 *    again over the selected pairs, in groups whose previous round overflowed (a group without
 *    overflow stops, as the host's `break`);
 * 3. `emit`: one invocation per token writes its selected experts with their weights (input
 *    weight, or model-native for a new expert; then the renormalisation), counts moved pairs
 *    (as many as new experts) and dropped ones, and orders the slots.
 * The round number is passed between passes through two scratch words each pass kind writes
 * only for the other kind, so the R rounds use two entry points.
 */
import type { LoweringContext, StageBatch, WgslPass, WgslStage } from '@moe-route/core'
import { capacityCutWgsl, capacityFamilyWgsl, DECODE_SKIPPED, groupCapacityParams, maxLoweredGroups, RENORMALIZE_CODES } from '../shared/index.js'
import type { RerouteOptions } from './reroute.schema.js'

/** Source devices whose capacities fit the stage parameters (beyond them the policy runs on the host). */
export const MAX_LOWERED_SOURCE_DEVICES = maxLoweredGroups(1)

// scratch: state (T × E), the round words RA (read by refill) and RB (read by cut), the
// overflow flag of each round and group (R × devices), then the candidate lists of the cut
// (E × T). params: 0 skip, 1.. capacity groups.
const code = (renorm: number, rounds: number) => /* wgsl */ `
${capacityFamilyWgsl}
const RENORM = ${renorm}u;
const ROUNDS = ${rounds}u;
fn stateAt(t: u32, e: u32) -> u32 { return t * dims.experts + e; }
fn roundA() -> u32 { return dims.tokens * dims.experts; }
fn roundB() -> u32 { return dims.tokens * dims.experts + 1u; }
fn overAt(r: u32, g: u32) -> u32 { return dims.tokens * dims.experts + 2u + (r - 1u) * dims.devices + g; }
fn candBase(e: u32) -> u32 { return dims.tokens * dims.experts + 2u + ROUNDS * dims.devices + e * dims.tokens; }
// Pair (t, e) takes part in round r's cut: an input pair in round 1, a selected one after.
fn inRound(t: u32, e: u32, r: u32) -> bool {
  if (r == 1u) { return hasInput(t, e); }
  let s = scratch[stateAt(t, e)];
  return s == 1u || s == 3u;
}
${capacityCutWgsl({
  name: 'cutRound',
  params: 'e: u32, dev: u32, cap: u32, lid: u32, candBase: u32, g: u32, r: u32',
  items: 'dims.tokens',
  candidate: 'inGroup(i, dev) && inRound(i, e, r)',
  beats: 'scoreBeats(ib, ia, e)',
  kept: 'if (r == 1u) { scratch[stateAt(i, e)] = 1u; }',
  over: 'scratch[stateAt(i, e)] = 2u; scratch[overAt(r, g)] = 1u;',
})}

@compute @workgroup_size(256)
fn cut(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  stageBegin(wid, nwg, lid);
  if (param(0u) == 1u) { return; }
  let e = workgroupIndex();
  let r = uniformOf(scratch[roundB()], lid) + 1u;
  if (lid == 0u && e == 0u) {
    scratch[roundA()] = r;
    if (r == 1u) { statMax(STAT_HAS_CAPACITY, 1u); }
  }
  for (var g = 0u; g < capGroups(1u); g = g + 1u) {
    let cap = capGroupCap(1u, g);
    if (cap == 0xffffffffu) { continue; }
    if (r > 1u) {
      // a group runs round r only if its round r − 1 overflowed
      if (uniformOf(scratch[overAt(r - 1u, g)], lid) == 0u) { continue; }
    }
    cutRound(e, capGroupDevice(1u, g), cap, lid, candBase(e), g, r);
    if (r == 1u && lid == 0u && e == 0u) { statMax(STAT_CAPACITY, cap); }
  }
}

@compute @workgroup_size(64)
fn refill(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  stageBegin(wid, nwg, lid);
  let t = workgroupIndex() * 64u + lid;
  let r = scratch[roundA()] + 1u;
  if (t == 0u) { scratch[roundB()] = r - 1u; }
  if (param(0u) == 1u || t >= dims.tokens) { return; }
  if (scratch[overAt(r - 1u, tokenGroup(1u, t))] == 0u) { return; }
  var have = 0u;
  for (var e = 0u; e < dims.experts; e = e + 1u) {
    let s = scratch[stateAt(t, e)];
    if (s == 1u || s == 3u) { have = have + 1u; }
  }
  let want = pairsIn(t);
  // next-best free experts by score (ties: lower expert), never a banned or chosen one
  for (var n = have; n < want; n = n + 1u) {
    var best = -1;
    var bestScore = 0.0;
    for (var e = 0u; e < dims.experts; e = e + 1u) {
      if (scratch[stateAt(t, e)] != 0u) { continue; }
      let s = score(t, e);
      if (best < 0 || s > bestScore) { best = i32(e); bestScore = s; }
    }
    if (best < 0) { break; }
    scratch[stateAt(t, u32(best))] = 3u;
  }
}

@compute @workgroup_size(64)
fn emit(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  stageBegin(wid, nwg, lid);
  let t = workgroupIndex() * 64u + lid;
  if (!emitBegin(t, param(0u) == 1u)) { return; }
  let den = nativeDenominator(t);
  // the weights before renormalisation: input weight for an input pair, model-native for a new one
  var sum = 0.0;
  var lost = 0u;
  for (var j = 0u; j < dims.slotsIn; j = j + 1u) {
    let e = idIn(t, j);
    if (e < 0) { continue; }
    if (scratch[stateAt(t, u32(e))] == 1u) { sum = sum + weightIn(t, j); } else { lost = lost + 1u; }
  }
  var gained = 0u;
  for (var e = 0u; e < dims.experts; e = e + 1u) {
    if (scratch[stateAt(t, e)] == 3u) { sum = sum + score(t, e) / den; gained = gained + 1u; }
  }
  var o = 0u;
  for (var j = 0u; j < dims.slotsIn; j = j + 1u) {
    let e = idIn(t, j);
    if (e < 0 || scratch[stateAt(t, u32(e))] != 1u) { continue; }
    idsOut[t * dims.slotsOut + o] = e;
    wOut[t * dims.slotsOut + o] = renormalizedAs(weightIn(t, j), score(t, u32(e)) / den, RENORM, sum);
    o = o + 1u;
  }
  for (var e = 0u; e < dims.experts; e = e + 1u) {
    if (scratch[stateAt(t, e)] != 3u || o >= dims.slotsOut) { continue; }
    let native = score(t, e) / den;
    idsOut[t * dims.slotsOut + o] = i32(e);
    wOut[t * dims.slotsOut + o] = renormalizedAs(native, native, RENORM, sum);
    o = o + 1u;
  }
  clearFrom(t, o);
  canonicalizeToken(t);
  if (gained > 0u) { stat(STAT_REROUTED, gained); }
  if (lost > gained) { stat(STAT_DROPPED, lost - gained); }
}
`

/**
 * The WGSL stage of `reroute` with `options`, or null where the options need the host
 * (per-source-device scope over more than {@link MAX_LOWERED_SOURCE_DEVICES} devices).
 * Runs 2·rounds passes: `cut`, then `refill` and `cut` for each later round, then `emit`.
 * @example
 * const stage = rerouteStage({ ...defaultOptions, rounds: 3 }, ctx)
 */
export function rerouteStage(options: RerouteOptions, ctx: LoweringContext): WgslStage | null {
  if (options.scope === 'per-source-device' && ctx.devices > MAX_LOWERED_SOURCE_DEVICES) return null
  const E = ctx.model.experts
  const R = options.rounds
  const perToken = (b: StageBatch) => Math.max(1, Math.ceil(b.tokens / 64))
  const cut: WgslPass = { entryPoint: 'cut', workgroupSize: 256, workgroups: () => E }
  const refill: WgslPass = { entryPoint: 'refill', workgroupSize: 64, workgroups: perToken }
  const passes: WgslPass[] = [cut]
  for (let r = 2; r <= R; r++) passes.push(refill, cut)
  passes.push({ entryPoint: 'emit', workgroupSize: 64, workgroups: perToken })
  return {
    kind: 'wgsl',
    key: `reroute|${RENORMALIZE_CODES[options.renormalize]}|${R}`,
    code: code(RENORMALIZE_CODES[options.renormalize], R),
    passes,
    scratchWords: (b) => b.tokens * E + 2 + R * ctx.devices + E * b.tokens,
    params: (b) => [b.decode && !options.applyToDecode ? 1 : 0, ...groupCapacityParams(options, ctx, b)],
    skippedReason: DECODE_SKIPPED,
    dropReason: 'reroute-exhausted',
    moves: 'by-score',
  }
}
