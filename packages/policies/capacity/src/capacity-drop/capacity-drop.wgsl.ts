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
import type { LoweringContext, StageBatch, WgslStage } from '@moe-route/core'
import type { CapacityDropOptions } from './capacity-drop.schema.js'
import { capacityFamilyWgsl, groupCapacityParams, maxLoweredGroups, RENORMALIZE_CODES } from '../shared/family.wgsl.js'

const PRIORITY = { score: 0, first: 1, last: 2, random: 3 } as const

/** Source devices whose capacities fit the stage parameters (beyond them the policy runs on the host). */
export const MAX_LOWERED_SOURCE_DEVICES = maxLoweredGroups(3)

// params: 0 priority, 1 renormalize, 2 skip (decode batch left alone), 3.. capacity groups
// (groupCapacityParams: scope flag, then one capacity per group)
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
  for (var g = 0u; g < capGroups(3u); g = g + 1u) {
    let cap = capGroupCap(3u, g);
    if (cap == 0xffffffffu) { continue; }
    keepWithinCapacity(e, BUCKET_EXPERT, capGroupDevice(3u, g), cap, param(0u), lid, flagBase(), candBase(e), ordBase());
    if (lid == 0u && e == 0u) { statMax(STAT_CAPACITY, cap); }
  }
}

@compute @workgroup_size(64)
fn emit(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  stageBegin(wid, nwg, lid);
  emitOrCopy(workgroupIndex() * 64u + lid, param(2u) == 1u, param(1u), flagBase());
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
  const { experts } = ctx.model
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
    params: (b) => [PRIORITY[options.priority], RENORMALIZE_CODES[options.renormalize], b.decode && !options.applyToDecode ? 1 : 0, ...groupCapacityParams(options, ctx, b)],
    skippedReason: 'decode batch (one token per sequence): not capped because applyToDecode is false',
    dropReason: 'capacity',
  }
}

