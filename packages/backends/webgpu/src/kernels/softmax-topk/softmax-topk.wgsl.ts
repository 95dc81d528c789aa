/** Constants of the routing kernels (one invocation per token). */
export interface SoftmaxTopkConsts {
  readonly workgroupSize: number
}

/** WGSL `fn softmaxRow(t: u32)`: scores[t, :] = softmax(logits[t, :]), max-subtracted, f32. */
const softmaxRowFn = /* wgsl */ `
fn softmaxRow(t: u32, E: u32) {
  let o = t * E;
  var m = logits[o];
  for (var e = 1u; e < E; e = e + 1u) { m = max(m, logits[o + e]); }
  var sum = 0.0;
  for (var e = 0u; e < E; e = e + 1u) { sum = sum + exp(logits[o + e] - m); }
  let inv = 1.0 / sum;
  for (var e = 0u; e < E; e = e + 1u) { scores[o + e] = exp(logits[o + e] - m) * inv; }
}`

/**
 * WGSL \`fn topkRow(t, E, k, normalize)\`: top-k of scores[t, :] by score descending, ties to
 * the lower expert index (k passes over E, each taking the best entry strictly after the
 * previous pick in that order). Weights are the scores, renormalised over the k picks when
 * \`normalize\` is 1.
 */
const topkRowFn = /* wgsl */ `
fn topkRow(t: u32, E: u32, k: u32, normalize: u32) {
  let o = t * E;
  var prevS = 0.0;
  var prevI = -1;
  var sum = 0.0;
  for (var j = 0u; j < k; j = j + 1u) {
    var best = -1;
    var bestS = 0.0;
    for (var e = 0u; e < E; e = e + 1u) {
      let s = scores[o + e];
      let after = j == 0u || s < prevS || (s == prevS && i32(e) > prevI);
      if (after && (best < 0 || s > bestS)) { best = i32(e); bestS = s; }
    }
    topIdx[t * k + j] = best;
    topW[t * k + j] = bestS;
    sum = sum + bestS;
    prevS = bestS;
    prevI = best;
  }
  if (normalize == 1u) {
    for (var j = 0u; j < k; j = j + 1u) {
      topW[t * k + j] = select(1.0 / f32(k), topW[t * k + j] / sum, sum > 0.0);
    }
  }
}`

/** Bindings of both fused softmax-topk kernels. */
const fusedBindings = `struct Params { tokens: u32, experts: u32, k: u32, normalize: u32 };
@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read_write> scores: array<f32>;
@group(0) @binding(2) var<storage, read_write> topIdx: array<i32>;
@group(0) @binding(3) var<storage, read_write> topW: array<f32>;
@group(0) @binding(4) var<uniform> params: Params;`

const tokenOf = (workgroupSize: number) => `let t = (wid.y * nwg.x + wid.x) * ${workgroupSize}u + lid;`

/** Row softmax, max-subtracted, f32: scores[t, :] = softmax(logits[t, :]). */
export const softmaxWgsl = ({ workgroupSize }: SoftmaxTopkConsts): string => /* wgsl */ `
struct Params { tokens: u32, experts: u32, _a: u32, _b: u32 };
@group(0) @binding(0) var<storage, read> logits: array<f32>;
@group(0) @binding(1) var<storage, read_write> scores: array<f32>;
@group(0) @binding(2) var<uniform> params: Params;
${softmaxRowFn}
@compute @workgroup_size(${workgroupSize})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  ${tokenOf(workgroupSize)}
  if (t >= params.tokens) { return; }
  softmaxRow(t, params.experts);
}`

/** Top-k per token (see `topkRow`); bindings: scores, topIdx, topW. */
export const topkWgsl = ({ workgroupSize }: SoftmaxTopkConsts): string => /* wgsl */ `
struct Params { tokens: u32, experts: u32, k: u32, normalize: u32 };
@group(0) @binding(0) var<storage, read> scores: array<f32>;
@group(0) @binding(1) var<storage, read_write> topIdx: array<i32>;
@group(0) @binding(2) var<storage, read_write> topW: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;
${topkRowFn}
@compute @workgroup_size(${workgroupSize})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  ${tokenOf(workgroupSize)}
  if (t >= params.tokens) { return; }
  topkRow(t, params.experts, params.k, params.normalize);
}`

/**
 * Softmax then top-k of each token in one kernel (the same arithmetic as the two kernels, one
 * dispatch fewer: each costs about 9 µs on the H200 at decode sizes). Bindings: logits,
 * scores, topIdx, topW.
 */
export const softmaxTopkWgsl = ({ workgroupSize }: SoftmaxTopkConsts): string => /* wgsl */ `
${fusedBindings}
${softmaxRowFn}
${topkRowFn}
@compute @workgroup_size(${workgroupSize})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  ${tokenOf(workgroupSize)}
  if (t >= params.tokens) { return; }
  softmaxRow(t, params.experts);
  topkRow(t, params.experts, params.k, params.normalize);
}`

/**
 * Softmax and top-k with one subgroup per token (few tokens: decode), the same results as
 * {@link softmaxTopkWgsl} bit for bit: lane l holds experts l, l + S, …; the row max is a
 * subgroup max (exact), the exps are the same expression, their sum is taken in expert order
 * (each exp fetched by subgroupShuffle, every lane adding in the same order), and each top-k
 * pass takes the subgroup max of the lanes' best remaining scores, then the lowest expert
 * holding it — the sequential rule (score desc, ties lower id). One thread per token took
 * 57 µs for an OLMoE token (E 64, k 8) on the H200.
 */
export const softmaxTopkSubgroupWgsl = ({ workgroupSize, subgroupSize }: SoftmaxTopkConsts & { subgroupSize: number }): string => {
  return /* wgsl */ `enable subgroups;
diagnostic(off, subgroup_uniformity);
${fusedBindings}
const S = ${subgroupSize}u;
const PER = ${Math.ceil(256 / subgroupSize)}u; // experts per lane at most (E ≤ 256)
@compute @workgroup_size(${workgroupSize})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32, @builtin(subgroup_invocation_id) lane: u32) {
  let t = (wid.y * nwg.x + wid.x) * ${workgroupSize / subgroupSize}u + lid / S;
  if (t >= params.tokens) { return; } // whole subgroups: t is the same on every lane of one
  let E = params.experts;
  let k = params.k;
  let o = t * E;
  let n = (E + S - 1u) / S;
  var ex: array<f32, PER>;
  var m = logits[o]; // every lane starts from expert 0: the max is unchanged
  for (var i = 0u; i < n; i = i + 1u) {
    let e = lane + i * S;
    if (e < E) { m = max(m, logits[o + e]); }
  }
  m = subgroupMax(m);
  for (var i = 0u; i < n; i = i + 1u) {
    let e = lane + i * S;
    ex[i] = select(0.0, exp(logits[o + min(e, E - 1u)] - m), e < E);
  }
  var sum = 0.0;
  for (var e = 0u; e < E; e = e + 1u) { sum = sum + subgroupShuffle(ex[e / S], e % S); }
  let inv = 1.0 / sum;
  var sc: array<f32, PER>;
  for (var i = 0u; i < n; i = i + 1u) {
    let e = lane + i * S;
    sc[i] = ex[i] * inv;
    if (e < E) { scores[o + e] = sc[i]; }
  }
  var prevS = 0.0;
  var prevI = -1;
  var total = 0.0;
  for (var j = 0u; j < k; j = j + 1u) {
    var bs = -1.0;
    var bi = -1;
    for (var i = 0u; i < n; i = i + 1u) {
      let e = lane + i * S;
      let s = sc[i];
      let after = j == 0u || s < prevS || (s == prevS && i32(e) > prevI);
      if (e < E && after && (bi < 0 || s > bs)) { bs = s; bi = i32(e); }
    }
    let best = subgroupMax(bs);
    let idx = subgroupMin(select(0xffffffffu, u32(bi), bi >= 0 && bs == best));
    if (lane == 0u) {
      topIdx[t * k + j] = i32(idx);
      topW[t * k + j] = best;
    }
    total = total + best;
    prevS = best;
    prevI = i32(idx);
  }
  if (params.normalize == 1u && lane == 0u) {
    for (var j = 0u; j < k; j = j + 1u) {
      topW[t * k + j] = select(1.0 / f32(k), topW[t * k + j] / total, total > 0.0);
    }
  }
}`
}
