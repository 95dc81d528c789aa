/**
 * The GPU lowering that docs/writing-a-policy.md shows ("Optional: a GPU lowering"), as written
 * there, made into a policy and checked with the testkit's checkLowering on a real WebGPU device
 * (Mesa lavapipe in CI, where a missing adapter fails instead of skipping). The docs mark both
 * blocks as showing this file, and scripts/test-docs.mjs checks that each line they show is here.
 */
import { definePolicy, pairsOf, routingFromPairs } from '@moe-route/core'
import { probeAdapter } from '@moe-route/backend-webgpu'
import { checkLowering } from '@moe-route/testkit'
import { describe, it, vi } from 'vitest'
import { f32Bits, type LoweringContext, type WgslStage } from '@moe-route/core'

const code = /* wgsl */ `
@compute @workgroup_size(64)
fn emit(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  stageBegin(wid, nwg, lid);
  let t = workgroupIndex() * 64u + lid;
  if (t >= dims.tokens) { return; }
  var o = 0u;
  var dropped = 0u;
  for (var j = 0u; j < dims.slotsIn; j = j + 1u) {
    let e = idIn(t, j);
    if (e < 0) { continue; }
    if (weightIn(t, j) >= paramF(0u)) { idsOut[t * dims.slotsOut + o] = e; wOut[t * dims.slotsOut + o] = weightIn(t, j); o = o + 1u; }
    else { dropped = dropped + 1u; }
  }
  for (var j = o; j < dims.slotsOut; j = j + 1u) { idsOut[t * dims.slotsOut + j] = -1; wOut[t * dims.slotsOut + j] = 0.0; }
  canonicalizeToken(t); // the host's slot order: weight desc, then expert
  if (dropped > 0u) { stat(STAT_DROPPED, dropped); }
}`

function minWeightStage(minWeight: number, _ctx: LoweringContext): WgslStage {
  return {
    kind: 'wgsl',
    key: 'min-weight',                              // identifies the compiled code (no per-batch values)
    code,                                           // compiled after core's POLICY_PRELUDE
    passes: [{ entryPoint: 'emit', workgroupSize: 64, workgroups: (b) => Math.ceil(b.tokens / 64) }],
    params: () => [f32Bits(minWeight)],             // up to 16 words per batch (paramF(0u) in WGSL)
    dropReason: 'min-weight',
  }
}

/** The host side: drops every pair whose weight is below `minWeight`; the lowering above makes the same decisions on the device. */
const minWeight = definePolicy<{ minWeight: number }>({
  meta: {
    name: 'min-weight',
    package: 'moe-route-policy-min-weight',
    version: '1.0.0',
    core: '^0.1.0',
    schema: { type: 'object', properties: { minWeight: { type: 'number' } }, additionalProperties: false },
    defaultOptions: { minWeight: 0.3 },
    device: ['wgsl'],
  },
  create: (options) => ({
    name: 'min-weight',
    apply(routing) {
      const pairs = pairsOf(routing)
      const dropped = pairs.filter((p) => p.weight < options.minWeight).map((p) => ({ ...p, reason: 'min-weight', policy: 'min-weight' }))
      return { routing: routingFromPairs(routing, pairs.filter((p) => p.weight >= options.minWeight)), dropped }
    },
    lower: (ctx) => minWeightStage(options.minWeight, ctx),
  }),
})

vi.setConfig({ testTimeout: 180_000 })
const required = Boolean(process.env.CI) || process.env.MOE_ROUTE_REQUIRE_WEBGPU === '1'
const adapter = await probeAdapter()

describe.runIf(adapter || required)(`the documented min-weight lowering on ${adapter ?? 'no adapter'}`, () => {
  it('lowers exactly', () => checkLowering(minWeight, { minWeight: 0.3 }, { runs: 60 }), 120_000)
})
