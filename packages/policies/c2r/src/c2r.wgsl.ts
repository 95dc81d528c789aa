/**
 * The GPU lowering of the `c2r` router: the decisions of {@link c2rRoute} on the device, over
 * core's ROUTER_PRELUDE. One invocation per token: the gate probabilities (`softmaxRow`, f32,
 * or the given probabilities), the top-1 expert (highest score, lowest id on ties), then
 * k − 1 passes over its Top-T collaborators, each taking the best candidate (score
 * descending, then expert ascending) after the previous pick — the host's insertion keeps
 * exactly these. Slots are written in the host's order (top-1 first, then the collaborators by
 * score), weights the raw probabilities or their share of the chosen sum (`normalizeTopK`).
 * The collaborator lists travel in the stage's `table`: expert e's Top-T at `table(e·T + i)`.
 */
import { topKPicksWgsl, type LoweringContext, type StageBatch, type WgslStage } from '@moe-route/core'

const WG = 64

// params: 0 topT, 1 normalizeTopK (0/1)
const code = /* wgsl */ `
fn c2rRow(t: u32, E: u32, k: u32, topT: u32, normalize: bool) {
  let o = t * E;
  var e1 = 0u;
  for (var e = 1u; e < E; e = e + 1u) { if (scores[o + e] > scores[o + e1]) { e1 = e; } }
  idsOut[t * k] = i32(e1);
  wOut[t * k] = scores[o + e1];
  var sum = scores[o + e1];
  var prevS = 0.0;
  var prevI = -1;
  let base = e1 * topT;${topKPicksWgsl({ first: '1u', count: 'topT', candidate: (i) => `i32(table(base + ${i}))` })}
  if (normalize) { renormalizeSlots(t, k, sum); }
}

@compute @workgroup_size(${WG})
fn route(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  stageBegin(wid, nwg, lid);
  let t = workgroupIndex() * ${WG}u + lid;
  if (t >= dims.tokens) { return; }
  softmaxRow(t, dims.experts);
  c2rRow(t, dims.experts, dims.topK, param(0u), param(1u) == 1u);
}
`

/**
 * The WGSL stage of the `c2r` router: `collaborators` are the (checked) per-expert lists, of
 * which the first `topT` are used.
 * @example
 * const stage = c2rStage({ topK: 2, topT: 5, collaborators: profile.layers[0].lists, normalizeTopK: true }, ctx)
 */
export function c2rStage(params: { readonly topK: number; readonly topT: number; readonly collaborators: readonly (readonly number[])[]; readonly normalizeTopK: boolean }, ctx: LoweringContext): WgslStage {
  const { topT, collaborators } = params
  const E = ctx.model.experts
  const table = new Uint32Array(Math.max(1, E * topT))
  for (let e = 0; e < E; e++) for (let i = 0; i < topT; i++) table[e * topT + i] = collaborators[e][i]
  return {
    kind: 'wgsl',
    key: `c2r|wg=${WG}`,
    code,
    passes: [{ entryPoint: 'route', workgroupSize: WG, workgroups: (b: StageBatch) => Math.ceil(b.tokens / WG) }],
    slotsOut: ctx.model.topK,
    params: () => [topT, params.normalizeTopK ? 1 : 0],
    table,
  }
}
