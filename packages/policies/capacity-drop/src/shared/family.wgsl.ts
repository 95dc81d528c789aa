/**
 * WGSL shared by the GPU lowerings of the capacity family (capacity-drop, expanded-drop,
 * reroute, spare-capacity-reroute): workgroup scans, the per-expert capacity cut (as a
 * template each stage instantiates with its own candidates and order), capacity groups
 * (the scopes of SPEC A.3) and the weight conventions.
 */
import { WORKGROUP_SCAN_WGSL, type LoweringContext, type StageBatch } from '@moe-route/core'
import type { CapacityOptions } from './schema.js'
import { capacityOf } from './scope.js'

/** What a capacity cut compares and decides (WGSL snippets; see {@link capacityCutWgsl}). */
export interface CapacityCutSpec {
  /** Name of the generated WGSL function. */
  readonly name: string
  /** Its full WGSL parameter list; must declare `cap`, `lid` and `candBase` (u32); the snippets may use the others. */
  readonly params: string
  /** u32 expression: how many items compete (items are numbered 0..n−1). */
  readonly items: string
  /** bool expression: item `i` competes for expert `e` in the group of source device `dev` (0xffffffff: every token). */
  readonly candidate: string
  /** bool expression: item `ib` is kept before item `ia` at expert `e` (a strict total order). */
  readonly beats: string
  /** Statements run for each item within capacity (`i`, `e`). */
  readonly kept?: string
  /** Statements run for each item over capacity (`i`, `e`). */
  readonly over?: string
}

/**
 * A WGSL function that keeps, at expert `e`, the `cap` best of the items that are candidates
 * there (one workgroup of 256 per call, uniform control flow): candidates are compacted in
 * item order into `scratch[candBase..]` (room for every item), each is ranked by counting
 * the candidates that beat it (O(n²) per expert, stopping at `cap`), then `kept` or `over`
 * runs for it. Returns the number of candidates. Needs {@link capacityFamilyWgsl} in the
 * module (for `exclusiveScan` and `WG`).
 * @example
 * capacityCutWgsl({ name: 'cut', params: 'e: u32, dev: u32, cap: u32, lid: u32, candBase: u32', items: 'dims.tokens',
 *   candidate: 'isCandidate(i, e) && inGroup(i, dev)', beats: 'score(ib, e) > score(ia, e) || (score(ib, e) == score(ia, e) && ib < ia)',
 *   kept: 'scratch[keepAt(i, e)] = 1u;' })
 */
export function capacityCutWgsl(spec: CapacityCutSpec): string {
  return /* wgsl */ `
fn ${spec.name}(${spec.params}) -> u32 {
  let cutItems = ${spec.items};
  var cutN = 0u;
  for (var cutChunk = 0u; cutChunk < cutItems; cutChunk = cutChunk + WG) {
    let i = cutChunk + lid;
    var cutFlag = false;
    if (i < cutItems) { cutFlag = ${spec.candidate}; }
    let cutScan = exclusiveScan(select(0u, 1u, cutFlag), lid);
    if (cutFlag) { scratch[candBase + cutN + cutScan.x] = i; }
    cutN = cutN + cutScan.y;
  }
  storageBarrier();
  for (var cutX = lid; cutX < cutN; cutX = cutX + WG) {
    let ia = scratch[candBase + cutX];
    var cutRank = 0u;
    if (cutN > cap) {
      for (var cutY = 0u; cutY < cutN; cutY = cutY + 1u) {
        if (cutY == cutX) { continue; }
        let ib = scratch[candBase + cutY];
        if (${spec.beats}) {
          cutRank = cutRank + 1u;
          if (cutRank >= cap) { break; }
        }
      }
    }
    let i = ia;
    if (cutRank < cap) { ${spec.kept ?? ''} } else { ${spec.over ?? ''} }
  }
  storageBarrier();
  return cutN;
}
`
}

/** Codes of the renormalisation modes in the family's WGSL (`renormalized(t, j, mode, keptSum)`). */
export const RENORMALIZE_CODES = { none: 0, 'model-native': 1, kept: 2 } as const

/**
 * Shared WGSL of the capacity family (placed after core's POLICY_PRELUDE): priority keys and
 * `beats()`, the keep rule per bucket (`keepWithinCapacity()`, a bucket being an expert or,
 * for device-level capacity, the primary device of the pair's expert), capacity groups,
 * renormalisation and the per-token emit of kept pairs (`emitKept()`, `emitOrCopy()`,
 * `copyToken()`), plus small helpers of the reroute stages.
 */
export const capacityFamilyWgsl = /* wgsl */ `
const WG = 256u;
var<workgroup> nShared: u32;
${WORKGROUP_SCAN_WGSL}
// Priority codes: 0 score, 1 first (earlier tokens win), 2 last, 3 random (seeded draws).
fn drawOf(p: u32, ordBase: u32) -> u32 {
  let t = p / dims.slotsIn;
  return mulberry32At(dims.seed, scratch[ordBase + t] + p % dims.slotsIn);
}
// True when pair b is kept before pair a in a capacity bucket: key descending (the score of
// each pair's own expert, the token for first/last, the seeded draw for random), then token
// ascending, then expert ascending, then pair order (core's compareKeyed and a stable sort).
fn beats(pb: u32, pa: u32, priority: u32, ordBase: u32) -> bool {
  let tb = pb / dims.slotsIn;
  let ta = pa / dims.slotsIn;
  let eb = idsIn[pb];
  let ea = idsIn[pa];
  if (priority == 0u) {
    let sb = score(tb, u32(eb));
    let sa = score(ta, u32(ea));
    if (sb != sa) { return sb > sa; }
  } else if (priority == 2u) {
    if (tb != ta) { return tb > ta; }
  } else if (priority == 3u) {
    let db = drawOf(pb, ordBase);
    let da = drawOf(pa, ordBase);
    if (db != da) { return db > da; }
  }
  if (tb != ta) { return tb < ta; }
  if (eb != ea) { return eb < ea; }
  return pb < pa;
}
// Capacity buckets: a pair counts against its expert, or its expert's primary device
// (placement replicas[e][0], as device-level capacity counts it).
const BUCKET_EXPERT = 0u;
const BUCKET_DEVICE = 1u;
// Bucket of pair p (flat index t * slotsIn + j) under a bucket kind; -1 for an empty slot.
fn pairBucket(p: u32, kind: u32) -> i32 {
  let e = idsIn[p];
  if (e < 0 || kind == BUCKET_EXPERT) { return e; }
  return i32(replicaDevice(u32(e), 0u));
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
// True when token t belongs to the capacity group of source device dev (0xffffffff: every token).
fn inGroup(t: u32, dev: u32) -> bool { return dev == 0xffffffffu || srcDevice(t) == dev; }
// True when token tb is kept before token ta at expert e: score descending, then token.
fn scoreBeats(tb: u32, ta: u32, e: u32) -> bool {
  let sb = score(tb, e);
  let sa = score(ta, e);
  return sb > sa || (sb == sa && tb < ta);
}
// True when expert e is one of token t's input pairs.
fn hasInput(t: u32, e: u32) -> bool {
  for (var j = 0u; j < dims.slotsIn; j = j + 1u) { if (idIn(t, j) == i32(e)) { return true; } }
  return false;
}
var<workgroup> uniformWord: u32;
// Invocation 0's v as every invocation of the workgroup sees it (a uniform value: barriers may
// depend on it). Call in uniform control flow.
fn uniformOf(v: u32, lid: u32) -> u32 {
  if (lid == 0u) { uniformWord = v; }
  return workgroupUniformLoad(&uniformWord);
}
// Keeps at most cap pairs of bucket b (an expert, or a device: see pairBucket) among the
// tokens of source device dev (all tokens when dev == 0xffffffff): sets scratch[flagBase + p]
// = 1 for each kept pair p. One workgroup per bucket; uniform control flow. candBase has room
// for tokens * slotsIn words. Returns the bucket's pair count in the group.
${capacityCutWgsl({
  name: 'keepWithinCapacity',
  params: 'b: u32, kind: u32, dev: u32, cap: u32, priority: u32, lid: u32, flagBase: u32, candBase: u32, ordBase: u32',
  items: 'dims.tokens * dims.slotsIn',
  candidate: 'pairBucket(i, kind) == i32(b) && inGroup(i / dims.slotsIn, dev)',
  beats: 'beats(ib, ia, priority, ordBase)',
  kept: 'scratch[flagBase + i] = 1u;',
})}
// Capacity groups, from the stage parameters groupCapacityParams() writes at word \`at\`:
// param(at) = 1 for the per-source-device scope (one group per source device), else one
// global group; param(at + 1 + g) = capacity of group g (0xffffffff: the group has no tokens).
fn capGroups(at: u32) -> u32 { return select(1u, dims.devices, param(at) == 1u); }
fn capGroupDevice(at: u32, g: u32) -> u32 { return select(0xffffffffu, g, param(at) == 1u); }
fn capGroupCap(at: u32, g: u32) -> u32 { return param(at + 1u + g); }
fn tokenGroup(at: u32, t: u32) -> u32 { return select(0u, srcDevice(t), param(at) == 1u); }
// Denominator of token t's model-native weights: the sum of its input pairs' scores when
// the model renormalises top-k (1 when that sum is 0), else 1 (as nativeDenominators).
fn nativeDenominator(t: u32) -> f32 {
  if (dims.normalizeTopK == 0u) { return 1.0; }
  var s = 0.0;
  for (var i = 0u; i < dims.slotsIn; i = i + 1u) {
    let ei = idIn(t, i);
    if (ei >= 0) { s = s + score(t, u32(ei)); }
  }
  return select(1.0, s, s > 0.0);
}
// Final weight of a pair under a renormalisation mode (0 none, 1 model-native, 2 kept), from
// its weight before renormalisation w, its model-native weight and the token's sum of w.
fn renormalizedAs(w: f32, native: f32, mode: u32, keptSum: f32) -> f32 {
  if (mode == 1u) { return native; }
  if (mode == 2u) { return select(0.0, w / keptSum, keptSum > 0.0); }
  return w;
}
// Final weight of kept pair (t, j) under a renormalisation mode (0 none, 1 model-native, 2 kept).
fn renormalized(t: u32, j: u32, mode: u32, keptSum: f32) -> f32 {
  let w = weightIn(t, j);
  if (mode != 1u) { return renormalizedAs(w, 0.0, mode, keptSum); }
  return score(t, u32(idIn(t, j))) / nativeDenominator(t);
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
  clearFrom(t, o);
  canonicalizeToken(t);
  return dropped;
}
// Empties slots o.. of token t in the output.
fn clearFrom(t: u32, o: u32) {
  for (var j = o; j < dims.slotsOut; j = j + 1u) {
    idsOut[t * dims.slotsOut + j] = -1;
    wOut[t * dims.slotsOut + j] = 0.0;
  }
}
// Start of a per-token pass that writes the output: a skipped batch is counted once and its
// tokens copied. False when invocation t has nothing (more) to write.
fn emitBegin(t: u32, skip: bool) -> bool {
  if (t == 0u && skip) { stat(STAT_SKIPPED, 1u); }
  if (t >= dims.tokens) { return false; }
  if (skip) { copyToken(t); return false; }
  return true;
}
// Copies token t unchanged (a skipped batch).
fn copyToken(t: u32) {
  for (var j = 0u; j < dims.slotsOut; j = j + 1u) {
    if (j < dims.slotsIn) { idsOut[t * dims.slotsOut + j] = idIn(t, j); wOut[t * dims.slotsOut + j] = weightIn(t, j); }
    else { idsOut[t * dims.slotsOut + j] = -1; wOut[t * dims.slotsOut + j] = 0.0; }
  }
}
// The emit pass of a drop stage for token t (one invocation per token, t may be past the
// batch): a skipped batch is copied as it is (STAT_SKIPPED set once), else token t's kept
// pairs are written (emitKept) and its drops counted.
fn emitOrCopy(t: u32, skip: bool, mode: u32, flagBase: u32) {
  if (!emitBegin(t, skip)) { return; }
  let dropped = emitKept(t, mode, flagBase);
  if (dropped > 0u) { stat(STAT_DROPPED, dropped); }
}
`

/**
 * The stage parameter words of a batch's capacity groups, read in WGSL with `capGroups(at)`,
 * `capGroupDevice(at, g)` and `capGroupCap(at, g)` (see {@link capacityFamilyWgsl}): the scope
 * flag, then one capacity per group (the batch; or each source device, 0xffffffff where a
 * device has no tokens, every token on device 0 when the batch has no source devices).
 * Takes 1 + (per-source-device scope ? devices : 1) words.
 */
export function groupCapacityParams(options: Pick<CapacityOptions, 'capacityFactor' | 'rounding' | 'scope'>, ctx: LoweringContext, batch: StageBatch): number[] {
  const { topK, experts } = ctx.model
  const C = (n: number) => capacityOf(options.capacityFactor, n, topK, experts, options.rounding)
  if (options.scope !== 'per-source-device') return [0, C(batch.tokens)]
  if (!batch.sourceTokens) return [1, C(batch.tokens), ...new Array<number>(Math.max(0, ctx.devices - 1)).fill(0xffffffff)]
  return [1, ...batch.sourceTokens.map((n) => (n > 0 ? C(n) : 0xffffffff))]
}

/** Parameter words left for group capacities after `lead` words of a stage's own (16 in all). */
export function maxLoweredGroups(lead: number): number {
  return 16 - lead - 1
}
