/**
 * The GPU lowering of the `softmax-top-k` router: the same rule as {@link softmaxTopK} in
 * f32 (max-subtracted softmax; top-k by score descending, ties to the lower expert; weights
 * renormalised over the k picks when the model does). Two variants with the same picks:
 * one invocation per token, and one subgroup per token for decode-sized batches and wide E (the row max
 * is a subgroup max, the exps are summed in expert order on every lane, each top-k pass takes
 * the subgroup max then the lowest expert holding it).
 */
import type { LoweringContext, WgslStage } from '../device/lowering.js'

/** Tokens up to which the router runs one subgroup per token (where the device has subgroups). */
export const SOFTMAX_TOPK_SUBGROUP_MAX_TOKENS = 256

/**
 * Experts from which the router runs one subgroup per token at every batch size (where the
 * device has subgroups): one invocation per token walks all E scores k + 1 times, which took
 * 0.1 ms at E 64, k 8 from T = 512 on an H100 whatever T (Mixtral's E 8: 0.013 ms).
 */
export const SOFTMAX_TOPK_SUBGROUP_MIN_EXPERTS = 32

const WG = 64

/**
 * WGSL of top-k slot picks over a token's candidates, one pass per slot `first..k-1`: each pass
 * writes slot j (`idsOut`/`wOut`) with the best candidate — score descending, then expert
 * ascending — after the previous pick, and adds its score to `sum`. The caller's function has
 * `t`, `k`, `o` (the token's row in `scores`) and `var prevS: f32`, `var prevI: i32`, `var sum: f32`
 * (the last pick before `first`, and the sum so far); `count` candidates, the i-th `candidate(i)`
 * (an i32 expert id). Core's router passes every expert; the c2r router a top-1 expert's
 * collaborators.
 */
export function topKPicksWgsl(o: { readonly first: string; readonly count: string; readonly candidate: (i: string) => string }): string {
  return /* wgsl */ `
  for (var j = ${o.first}; j < k; j = j + 1u) {
    var best = -1;
    var bestS = 0.0;
    for (var i = 0u; i < ${o.count}; i = i + 1u) {
      let c = ${o.candidate('i')};
      let s = scores[o + u32(c)];
      let after = j == ${o.first} || s < prevS || (s == prevS && c > prevI);
      if (after && (best < 0 || s > bestS || (s == bestS && c < best))) { best = c; bestS = s; }
    }
    idsOut[t * k + j] = best;
    wOut[t * k + j] = bestS;
    sum = sum + bestS;
    prevS = bestS;
    prevI = best;
  }`
}

/** Top-k of scores[t, :] into idsOut/wOut (k passes, each the best entry after the previous pick). */
const topkRowFn = /* wgsl */ `
fn topkRow(t: u32, E: u32, k: u32, normalize: bool) {
  let o = t * E;
  var prevS = 0.0;
  var prevI = -1;
  var sum = 0.0;${topKPicksWgsl({ first: '0u', count: 'E', candidate: (i) => `i32(${i})` })}
  if (normalize) { renormalizeSlots(t, k, sum); }
  dropUnderflow(t, k);
}`

/** A pick whose weight is below the smallest normal f32 is not routed (MIN_PAIR_WEIGHT on the host). */
const dropUnderflowFn = /* wgsl */ `
fn dropUnderflow(t: u32, k: u32) {
  for (var j = 0u; j < k; j = j + 1u) {
    if (!(wOut[t * k + j] >= 1.17549435e-38)) { idsOut[t * k + j] = -1; wOut[t * k + j] = 0.0; }
  }
}`

const perThread = (normalize: boolean): string => /* wgsl */ `
${dropUnderflowFn}
${topkRowFn}
@compute @workgroup_size(${WG})
fn perThread(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  stageBegin(wid, nwg, lid);
  let t = workgroupIndex() * ${WG}u + lid;
  if (t >= dims.tokens) { return; }
  softmaxRow(t, dims.experts);
  topkRow(t, dims.experts, dims.topK, ${normalize});
}`

const perSubgroup = (normalize: boolean, S: number, wg: number): string => /* wgsl */ `
const SG = ${S}u;
const PER = ${Math.ceil(256 / S)}u; // experts per lane at most (E ≤ 256)
@compute @workgroup_size(${wg})
fn perSubgroup(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(subgroup_invocation_id) lane: u32) {
  stageBegin(wid, nwg, lid);
  let t = workgroupIndex() * ${wg / S}u + lid / SG;
  if (t >= dims.tokens) { return; } // whole subgroups: t is the same on every lane of one
  let E = dims.experts;
  let k = dims.topK;
  let o = t * E;
  let n = (E + SG - 1u) / SG;
  let fromScores = dims.inputScores == 1u;
  var ex: array<f32, PER>;
  var m = gateIn[o];
  for (var i = 0u; i < n; i = i + 1u) {
    let e = lane + i * SG;
    if (e < E) { m = max(m, gateIn[o + e]); }
  }
  m = subgroupMax(m);
  for (var i = 0u; i < n; i = i + 1u) {
    let e = lane + i * SG;
    ex[i] = select(0.0, exp(gateIn[o + min(e, E - 1u)] - m), e < E);
  }
  var sum = 0.0;
  for (var e = 0u; e < E; e = e + 1u) { sum = sum + subgroupShuffle(ex[e / SG], e % SG); }
  let inv = 1.0 / sum;
  var sc: array<f32, PER>;
  for (var i = 0u; i < n; i = i + 1u) {
    let e = lane + i * SG;
    sc[i] = select(ex[i] * inv, gateIn[o + min(e, E - 1u)], fromScores);
    if (e < E) { scores[o + e] = sc[i]; }
  }
  var prevS = 0.0;
  var prevI = -1;
  var total = 0.0;
  for (var j = 0u; j < k; j = j + 1u) {
    var bs = -1.0;
    var bi = -1;
    for (var i = 0u; i < n; i = i + 1u) {
      let e = lane + i * SG;
      let s = sc[i];
      let after = j == 0u || s < prevS || (s == prevS && i32(e) > prevI);
      if (e < E && after && (bi < 0 || s > bs)) { bs = s; bi = i32(e); }
    }
    let best = subgroupMax(bs);
    let idx = subgroupMin(select(0xffffffffu, u32(bi), bi >= 0 && bs == best));
    if (lane == 0u) {
      idsOut[t * k + j] = i32(idx);
      wOut[t * k + j] = best;
    }
    total = total + best;
    prevS = best;
    prevI = i32(idx);
  }
  if (${normalize} && lane == 0u) { renormalizeSlots(t, k, total); }
  if (lane == 0u) { dropUnderflow(t, k); }
}`

/**
 * The router's WGSL stage: one subgroup per token for batches up to
 * {@link SOFTMAX_TOPK_SUBGROUP_MAX_TOKENS} tokens, and at every batch size from
 * {@link SOFTMAX_TOPK_SUBGROUP_MIN_EXPERTS} experts, where the device has a fixed subgroup size;
 * else one invocation per token. Both passes make the same picks by the same rule (weights may
 * differ in the last bit where a compiler evaluates exp differently); each batch runs one of them.
 */
export function softmaxTopKStage(normalize: boolean, ctx: LoweringContext): WgslStage {
  const S = ctx.subgroups && ctx.subgroupSize && ctx.subgroupSize >= 4 && ctx.subgroupSize <= 128 ? ctx.subgroupSize : null
  const small = (tokens: number) => S !== null && (tokens <= SOFTMAX_TOPK_SUBGROUP_MAX_TOKENS || ctx.model.experts >= SOFTMAX_TOPK_SUBGROUP_MIN_EXPERTS)
  const wg = Math.max(64, S ?? 64)
  return {
    kind: 'wgsl',
    key: `softmax-top-k|wg=${WG}|n=${normalize}${S ? `|sg=${S}` : ''}`,
    ...(S ? { enable: ['subgroups'] as const } : {}),
    code: perThread(normalize) + (S ? perSubgroup(normalize, S, wg) : ''),
    passes: [
      ...(S ? [{ entryPoint: 'perSubgroup', workgroupSize: wg, when: (b: { tokens: number }) => small(b.tokens), workgroups: (b: { tokens: number }) => Math.ceil((b.tokens * S) / wg) }] : []),
      { entryPoint: 'perThread', workgroupSize: WG, when: (b: { tokens: number }) => !small(b.tokens), workgroups: (b: { tokens: number }) => Math.ceil(b.tokens / WG) },
    ],
    slotsOut: ctx.model.topK,
  }
}
