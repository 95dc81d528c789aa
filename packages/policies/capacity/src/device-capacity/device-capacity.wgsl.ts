/**
 * The GPU lowering of `device-capacity`: the decisions of {@link applyDeviceCapacity} on the
 * device, for every rounding, renormalisation, scope and decode rule. Two passes over core's
 * POLICY_PRELUDE and the capacity family's shared WGSL:
 * 1. `select`: one workgroup per device; per capacity group (the batch, or each source
 *    device) the pairs whose expert's primary replica is on the device are compacted in token
 *    order and each is kept when fewer than B_d pairs beat it (score descending, then token,
 *    then expert: `keepWithinCapacity` with device buckets);
 * 2. `emit`: one invocation per token writes the kept pairs with their final weights, counts
 *    the drops and puts the slots in canonical order.
 *
 * Budgets B_d = rounding(n_d·γ·k·T/E) are computed on the host per batch (in f64, exactly as
 * the host policy does) and passed as parameters: one per (capacity group, class of devices
 * with the same n_d); the table maps each device to its class.
 */
import type { LoweringContext, PlacementMap, StageBatch, WgslStage } from '@moe-route/core'
import { capacityFamilyWgsl, capacityOf, DECODE_SKIPPED } from '../shared/index.js'
import type { DeviceCapacityOptions } from './device-capacity.schema.js'

const RENORM = { none: 0, 'model-native': 1, kept: 2 } as const

/** Parameter words before the budgets. */
const HEAD = 5
/** Budget words the stage parameters hold (16 words in all). */
export const MAX_LOWERED_BUDGETS = 16 - HEAD

/** Group without tokens (per-source-device scope): no budget. */
const NONE = 0xffffffff

// params: 0 renormalize, 1 skip (decode batch left alone), 2 per-source groups (0/1),
// 3 device classes C, 4 capacity to report, 5 + g * C + c budget of class c in group g
// (NONE: source device g has no tokens). table: class of each device.
const code = /* wgsl */ `
${capacityFamilyWgsl}
fn candBase(d: u32) -> u32 { return dims.tokens * dims.slotsIn * (d + 1u); }

@compute @workgroup_size(256)
fn select_(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  stageBegin(wid, nwg, lid);
  if (param(1u) == 1u) { return; }
  let d = workgroupIndex();
  // the host reports a capacity (0 when no group has tokens) whenever it acts
  if (lid == 0u && d == 0u) {
    statMax(STAT_HAS_CAPACITY, 1u);
    statMax(STAT_CAPACITY, param(4u));
  }
  let classes = param(3u);
  let c = table(d);
  if (param(2u) == 0u) {
    keepWithinCapacity(d, BUCKET_DEVICE, 0xffffffffu, param(5u + c), 0u, lid, 0u, candBase(d), 0u);
    return;
  }
  for (var g = 0u; g < dims.devices; g = g + 1u) {
    if (param(5u + g * classes) == ${NONE}u) { continue; }
    keepWithinCapacity(d, BUCKET_DEVICE, g, param(5u + g * classes + c), 0u, lid, 0u, candBase(d), 0u);
  }
}

@compute @workgroup_size(64)
fn emit(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  stageBegin(wid, nwg, lid);
  emitOrCopy(workgroupIndex() * 64u + lid, param(1u) == 1u, param(0u), 0u);
}
`

/** Devices grouped by how many experts have their primary replica there: the class of each device and n_d of each class. */
export function deviceClasses(primary: Int32Array, devices: number): { classOf: Uint32Array; hosted: number[] } {
  const perDevice = new Array<number>(devices).fill(0)
  for (const d of primary) perDevice[d]++
  const hosted = [...new Set(perDevice)].sort((a, b) => a - b)
  return { classOf: Uint32Array.from(perDevice, (n) => hosted.indexOf(n)), hosted }
}

/**
 * The WGSL stage of `device-capacity` with `options` under the primary devices `primary`
 * (`primaryDevices(placement, E)`), or null where the budgets do not fit the stage parameters
 * ({@link MAX_LOWERED_BUDGETS}: classes of devices with the same number of hosted experts,
 * times the devices under the per-source-device scope); such configurations run on the host.
 * @example
 * const stage = deviceCapacityStage({ ...defaultOptions, capacityFactor: 1 }, ctx, primaryDevices(ctx.placement, ctx.model.experts))
 */
export function deviceCapacityStage(options: DeviceCapacityOptions, ctx: LoweringContext, primary: Int32Array): WgslStage | null {
  const placement: PlacementMap = ctx.placement
  const D = placement.devices
  const { classOf, hosted } = deviceClasses(primary, D)
  const perSource = options.scope === 'per-source-device'
  if ((perSource ? D : 1) * hosted.length > MAX_LOWERED_BUDGETS) return null
  const { topK, experts } = ctx.model
  const budgets = (tokens: number) => hosted.map((n) => capacityOf(options.capacityFactor * n, tokens, topK, experts, options.rounding))
  const share = (tokens: number) => capacityOf(options.capacityFactor, tokens, topK, experts, options.rounding)
  return {
    kind: 'wgsl',
    key: 'device-capacity',
    code,
    passes: [
      { entryPoint: 'select_', workgroupSize: 256, workgroups: () => D },
      { entryPoint: 'emit', workgroupSize: 64, workgroups: (b: StageBatch) => Math.max(1, Math.ceil(b.tokens / 64)) },
    ],
    table: classOf,
    scratchWords: (b) => b.tokens * ctx.slotsIn * (D + 1),
    params: (b) => {
      const head = [RENORM[options.renormalize], b.decode && !options.applyToDecode ? 1 : 0, 0, hosted.length]
      // global scope, or per source device without source devices (every token on device 0)
      if (!perSource || !b.sourceTokens) return [...head, share(b.tokens), ...budgets(b.tokens)]
      const src = b.sourceTokens
      const capacity = src.reduce((m, n) => (n > 0 ? Math.max(m, share(n)) : m), 0)
      const words = Array.from({ length: D }, (_, g) => ((src[g] ?? 0) > 0 ? budgets(src[g]) : hosted.map(() => NONE))).flat()
      return [head[0], head[1], 1, head[3], capacity, ...words]
    },
    skippedReason: DECODE_SKIPPED,
    dropReason: 'device-capacity',
  }
}
