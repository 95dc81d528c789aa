/**
 * The GPU lowering of `expanded-drop`: the decisions of {@link applyExpandedDrop} on the
 * device. Two passes over core's POLICY_PRELUDE and the capacity family's shared WGSL:
 * 1. `select`: one workgroup per expert; per capacity group the tokens for which the expert
 *    is a candidate (an input pair, or an extra candidate: local, top-M or any expert) are
 *    compacted in token order and each is kept when fewer than C candidates beat it (score
 *    descending, then token: the host's sort);
 * 2. `emit`: one invocation per token writes its kept candidates (at most
 *    `maxExpertsPerToken`, best score first) with their raw or model-native scores, counts the
 *    dropped input pairs (with their reason) and the added pairs, and orders the slots.
 */
import type { LoweringContext, PlacementMap, StageBatch, WgslStage } from '@moe-route/core'
import { capacityCutWgsl, capacityFamilyWgsl, DECODE_SKIPPED, groupCapacityParams, maxLoweredGroups } from '../shared/index.js'
import type { ExpandedDropOptions } from './expanded-drop.schema.js'

/** Source devices whose capacities fit the stage parameters (beyond them the policy runs on the host). */
export const MAX_LOWERED_SOURCE_DEVICES = maxLoweredGroups(1)

const CANDIDATES = { local: 0, 'global-topM': 1, all: 2 } as const

/** Local candidate lists as E flags per list (one list when `flat`), or null where the host would throw. */
function localFlags(options: ExpandedDropOptions, experts: number, devices: number, placement: PlacementMap): { flags: Uint32Array; flat: boolean; widest: number } | null {
  let lists: number[][]
  let flat = false
  const le = options.localExperts
  if (le !== null) {
    flat = !(le.length > 0 && Array.isArray(le[0]))
    lists = flat ? [le as number[]] : (le as number[][])
    // ids outside 0..E−1, or a source device without a list: the host reports the error
    if (lists.some((l) => l.some((e) => !Number.isInteger(e) || e < 0 || e >= experts))) return null
    if (!flat && lists.length < devices) return null
  } else {
    if (placement.devices <= 1 || placement.experts !== experts) return null
    lists = Array.from({ length: placement.devices }, () => [])
    placement.replicas.forEach((devs, e) => {
      for (const d of new Set(devs)) lists[d].push(e)
    })
  }
  const flags = new Uint32Array(Math.max(1, lists.length * experts))
  let widest = 0
  lists.forEach((l, i) => {
    const set = new Set(l)
    widest = Math.max(widest, set.size)
    for (const e of set) flags[i * experts + e] = 1
  })
  return { flags, flat, widest }
}

// scratch: [0, T·S) drop reasons of the input slots, then keep flags (T × E), then the
// candidate lists of the select pass (E × T). params: 0 skip, 1.. capacity groups.
const code = (c: { cand: number; m: number; native: boolean; maxK: number; flat: boolean }) => /* wgsl */ `
${capacityFamilyWgsl}
const CAND = ${c.cand}u;
const TOP_M = ${c.m}u;
const NATIVE = ${c.native ? 1 : 0}u;
const MAX_K = ${c.maxK}u;
const FLAT = ${c.flat ? 1 : 0}u;
fn keepAt(t: u32, e: u32) -> u32 { return dims.tokens * dims.slotsIn + t * dims.experts + e; }
fn candBase(e: u32) -> u32 { return dims.tokens * dims.slotsIn + dims.tokens * dims.experts + e * dims.tokens; }
// Expert e is a candidate of token t: an input pair or an extra candidate.
fn isCandidate(t: u32, e: u32) -> bool {
  if (CAND == 2u || hasInput(t, e)) { return true; }
  if (CAND == 1u) {
    // among the token's TOP_M best scores (ties: lower expert), as topKIndices
    let s = score(t, e);
    var rank = 0u;
    for (var x = 0u; x < dims.experts; x = x + 1u) {
      let sx = score(t, x);
      if (sx > s || (sx == s && x < e)) { rank = rank + 1u; }
    }
    return rank < TOP_M;
  }
  return table(select(srcDevice(t), 0u, FLAT == 1u) * dims.experts + e) == 1u;
}
${capacityCutWgsl({
  name: 'keepCandidates',
  params: 'e: u32, dev: u32, cap: u32, lid: u32, candBase: u32',
  items: 'dims.tokens',
  candidate: 'inGroup(i, dev) && isCandidate(i, e)',
  beats: 'scoreBeats(ib, ia, e)',
  kept: 'scratch[keepAt(i, e)] = 1u;',
})}
// Kept candidate e of token t survives the per-token cap (the MAX_K best kept, score desc, expert asc).
fn withinTokenCap(t: u32, e: u32) -> bool {
  if (MAX_K == 0u) { return true; }
  let s = score(t, e);
  var rank = 0u;
  for (var x = 0u; x < dims.experts; x = x + 1u) {
    if (x == e || scratch[keepAt(t, x)] != 1u) { continue; }
    let sx = score(t, x);
    if (sx > s || (sx == s && x < e)) { rank = rank + 1u; }
  }
  return rank < MAX_K;
}

@compute @workgroup_size(256)
fn select_(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  stageBegin(wid, nwg, lid);
  if (param(0u) == 1u) { return; }
  let e = workgroupIndex();
  if (lid == 0u && e == 0u) { statMax(STAT_HAS_CAPACITY, 1u); }
  for (var g = 0u; g < capGroups(1u); g = g + 1u) {
    let cap = capGroupCap(1u, g);
    if (cap == 0xffffffffu) { continue; }
    keepCandidates(e, capGroupDevice(1u, g), cap, lid, candBase(e));
    if (lid == 0u && e == 0u) { statMax(STAT_CAPACITY, cap); }
  }
}

@compute @workgroup_size(64)
fn emit(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  stageBegin(wid, nwg, lid);
  let t = workgroupIndex() * 64u + lid;
  if (!emitBegin(t, param(0u) == 1u)) { return; }
  let den = select(1.0, nativeDenominator(t), NATIVE == 1u);
  var o = 0u;
  var added = 0u;
  for (var e = 0u; e < dims.experts; e = e + 1u) {
    if (scratch[keepAt(t, e)] != 1u || !withinTokenCap(t, e)) { continue; }
    if (o < dims.slotsOut) {
      idsOut[t * dims.slotsOut + o] = i32(e);
      wOut[t * dims.slotsOut + o] = score(t, e) / den;
      o = o + 1u;
    }
    if (!hasInput(t, e)) { added = added + 1u; }
  }
  clearFrom(t, o);
  canonicalizeToken(t);
  var dropped = 0u;
  for (var j = 0u; j < dims.slotsIn; j = j + 1u) {
    let e = idIn(t, j);
    if (e < 0) { continue; }
    if (scratch[keepAt(t, u32(e))] != 1u) {
      dropped = dropped + 1u;
    } else if (!withinTokenCap(t, u32(e))) {
      dropped = dropped + 1u;
      scratch[t * dims.slotsIn + j] = 1u; // max-experts-per-token
    }
  }
  if (dropped > 0u) { stat(STAT_DROPPED, dropped); }
  if (added > 0u) { stat(STAT_ADDED, added); }
}
`

/**
 * The WGSL stage of `expanded-drop` with `options`, or null where the options need the host:
 * per-source-device scope over more than {@link MAX_LOWERED_SOURCE_DEVICES} devices, and
 * `local` candidates the host rejects (no placement over more than one device and no
 * `localExperts`, ids outside 0..E−1, or fewer nested lists than devices), so the host's
 * error reaches the caller.
 * @example
 * const stage = expandedDropStage({ ...defaultOptions, candidates: 'all' }, ctx)
 */
export function expandedDropStage(options: ExpandedDropOptions, ctx: LoweringContext): WgslStage | null {
  const perSource = options.scope === 'per-source-device'
  if (perSource && ctx.devices > MAX_LOWERED_SOURCE_DEVICES) return null
  const { experts: E, topK } = ctx.model
  const S = ctx.slotsIn
  let extra = E
  let m = 0
  let local: ReturnType<typeof localFlags> = null
  if (options.candidates === 'global-topM') {
    m = Math.min(E, Math.ceil(topK * options.overselectionRatio - 1e-9))
    extra = m
  } else if (options.candidates === 'local') {
    local = localFlags(options, E, ctx.devices, ctx.placement)
    if (!local) return null
    extra = local.widest
  }
  const maxK = options.maxExpertsPerToken ?? 0
  // a token ends with at most its candidates (capped per token); a skipped batch keeps its S slots
  const widest = Math.min(E, S + extra, options.maxExpertsPerToken ?? Infinity)
  const c = { cand: CANDIDATES[options.candidates], m, native: options.weights === 'model-native', maxK, flat: local?.flat ?? false }
  return {
    kind: 'wgsl',
    key: `expanded-drop|${c.cand}|${m}|${c.native}|${maxK}|${c.flat}`,
    code: code(c),
    passes: [
      { entryPoint: 'select_', workgroupSize: 256, workgroups: () => E },
      { entryPoint: 'emit', workgroupSize: 64, workgroups: (b: StageBatch) => Math.max(1, Math.ceil(b.tokens / 64)) },
    ],
    slotsOut: Math.max(S, widest, 1),
    scratchWords: (b) => b.tokens * S + 2 * b.tokens * E,
    params: (b) => [b.decode && !options.applyToDecode ? 1 : 0, ...groupCapacityParams(options, ctx, b)],
    ...(local ? { table: local.flags } : {}),
    skippedReason: DECODE_SKIPPED,
    dropReason: 'capacity',
    dropReasons: ['max-experts-per-token'],
  }
}
