/**
 * The GPU lowering of `expert-drop`: the decisions of {@link applyExpertDrop} on the device,
 * for every `drop` value, every renormalisation and both decode rules. Three passes over
 * core's POLICY_PRELUDE:
 * 1. `accumulate`: one invocation per input slot adds 1 to its expert's load and the exact
 *    value of its gate score to the expert's routed mass (see {@link EXACT_MASS_LIMBS});
 * 2. `rank`: one workgroup ranks the experts (load ascending, then mass, then index, the
 *    host's sort) and marks the `n` lowest as skipped;
 * 3. `emit`: one invocation per token writes the pairs of the experts not skipped with their
 *    final weights (the capacity family's `emitKept`), counts the drops and puts the slots in
 *    canonical order.
 *
 * The host sums each expert's mass in f64, in token order. The device sums exactly instead:
 * every f32 score is a 24-bit integer times a power of two, so it adds into a fixed-point
 * accumulator of 12-bit limbs held in u32 atomics (an addition that wraps a limb carries 2^20
 * into the next one), and the sums compare exactly. Both agree whenever the f64 sums are
 * exact, which they are unless one expert's scores in a batch span more than about
 * 2^(29 − log2 T) in magnitude; where they are not, the order can differ only between two
 * experts with equal load whose masses lie within one f64 rounding of each other.
 */
import type { LoweringContext, StageBatch, WgslStage } from '@moe-route/core'
import { capacityFamilyWgsl, DECODE_SKIPPED } from '../shared/index.js'
import type { ExpertDropOptions } from './expert-drop.schema.js'

const RENORM = { none: 0, 'model-native': 1, kept: 2 } as const

/**
 * 12-bit limbs of an exact sum of f32 magnitudes: bits 2^-149 (the smallest subnormal) to
 * 2^128 (the largest finite f32), plus 32 bits of headroom (more pairs than a batch has).
 */
export const EXACT_MASS_LIMBS = 26

// counters: per expert e, at e * STRIDE: load, then L limbs of the positive mass, then L of the negative mass
// scratch: T*S keep flags, E skip flags, E keys of K = L + 2 words (load, mass sign, mass limbs high to low)
// params: 0 renormalize, 1 skip (decode batch left alone), 2 experts to drop
const code = /* wgsl */ `
${capacityFamilyWgsl}
const L = ${EXACT_MASS_LIMBS}u;
const STRIDE = ${1 + 2 * EXACT_MASS_LIMBS}u;
const K = L + 2u;
fn skipBase() -> u32 { return dims.tokens * dims.slotsIn; }
fn keyBase() -> u32 { return skipBase() + dims.experts; }

// Adds c (< 2^12) to limb i of the accumulator at counter word base; a limb that wraps
// (2^32 units of 2^(12 i)) carries 2^20 units of 2^(12 (i + 1)) into the next limb.
fn addLimb(base: u32, i: u32, c: u32) {
  var idx = i;
  var v = c;
  loop {
    if (idx >= L || v == 0u) { break; }
    let old = counterAdd(base + idx, v);
    if (old + v >= old) { break; }
    idx = idx + 1u;
    v = 1u << 20u;
  }
}
// Adds the exact magnitude of an f32 (x = m * 2^(sh - 149)) into the limbs at counter word base.
fn addExact(base: u32, x: f32) {
  let bits = bitcast<u32>(x);
  let ex = (bits >> 23u) & 0xffu;
  var m = bits & 0x7fffffu;
  if (ex != 0u) { m = m | 0x800000u; }
  if (m == 0u) { return; }
  let sh = max(ex, 1u) - 1u;
  let li = sh / 12u;
  let off = sh % 12u;
  addLimb(base, li, (m << off) & 0xfffu);
  addLimb(base, li + 1u, (m >> (12u - off)) & 0xfffu);
  addLimb(base, li + 2u, (m >> (24u - off)) & 0xfffu);
}
// Limb i of an accumulator plus an incoming carry: (12-bit limb, outgoing carry), no overflow.
fn settle(limb: u32, carry: u32) -> vec2<u32> {
  let lo = (limb & 0xfffu) + (carry & 0xfffu);
  return vec2<u32>(lo & 0xfffu, (limb >> 12u) + (carry >> 12u) + (lo >> 12u));
}

@compute @workgroup_size(256)
fn accumulate(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  stageBegin(wid, nwg, lid);
  // nothing to rank in a skipped batch or when no expert is dropped (skip flags stay zero)
  if (param(1u) == 1u || param(2u) == 0u) { return; }
  let p = workgroupIndex() * 256u + lid;
  if (p >= dims.tokens * dims.slotsIn) { return; }
  let e = idsIn[p];
  if (e < 0) { return; }
  let base = u32(e) * STRIDE;
  counterAdd(base, 1u);
  let s = score(p / dims.slotsIn, u32(e));
  if (s < 0.0) { addExact(base + 1u + L, s); } else { addExact(base + 1u, s); }
}

// Expert a comes before expert b in the host's ascending order (load, mass, index).
fn lowerThan(a: u32, b: u32) -> bool {
  for (var i = 0u; i < K; i = i + 1u) {
    let ka = scratch[keyBase() + a * K + i];
    let kb = scratch[keyBase() + b * K + i];
    if (ka != kb) { return ka < kb; }
  }
  return a < b;
}

@compute @workgroup_size(256)
fn rank(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  stageBegin(wid, nwg, lid);
  if (param(1u) == 1u || param(2u) == 0u) { return; }
  let E = dims.experts;
  // key of each expert: its load, then its mass (positive minus negative sum as a signed
  // multi-limb number) sign-flipped (1 = non-negative) and limbs from the highest, so keys
  // compare word by word
  for (var e = lid; e < E; e = e + WG) {
    let base = e * STRIDE + 1u;
    var cp = 0u;
    var cn = 0u;
    var borrow = 0u;
    for (var i = 0u; i < L; i = i + 1u) {
      let p = settle(counterLoad(base + i), cp);
      let n = settle(counterLoad(base + L + i), cn);
      cp = p.y;
      cn = n.y;
      let b = n.x + borrow;
      borrow = select(0u, 1u, p.x < b);
      scratch[keyBase() + e * K + 1u + L - i] = p.x + select(0u, 0x1000u, p.x < b) - b;
    }
    scratch[keyBase() + e * K] = counterLoad(e * STRIDE);
    scratch[keyBase() + e * K + 1u] = 1u - borrow;
  }
  storageBarrier();
  for (var e = lid; e < E; e = e + WG) {
    var below = 0u;
    for (var a = 0u; a < E; a = a + 1u) {
      if (a != e && lowerThan(a, e)) { below = below + 1u; }
    }
    scratch[skipBase() + e] = select(0u, 1u, below < param(2u));
  }
}

@compute @workgroup_size(64)
fn emit(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  stageBegin(wid, nwg, lid);
  let t = workgroupIndex() * 64u + lid;
  let skip = param(1u) == 1u;
  // keep flags of token t's pairs: those of experts not skipped
  if (t < dims.tokens && !skip) {
    for (var j = 0u; j < dims.slotsIn; j = j + 1u) {
      let e = idIn(t, j);
      scratch[t * dims.slotsIn + j] = select(0u, 1u, e >= 0 && scratch[skipBase() + u32(max(e, 0))] == 0u);
    }
  }
  emitOrCopy(t, skip, param(0u), 0u);
}
`

/**
 * The WGSL stage of `expert-drop` with `options`, skipping the `skipped` lowest-load experts
 * of each batch (`expertsToDrop(options.drop, E)`). Every option combination lowers.
 * @example
 * const stage = expertDropStage({ ...defaultOptions, drop: 1 }, ctx, 1)
 */
export function expertDropStage(options: ExpertDropOptions, ctx: LoweringContext, skipped: number): WgslStage {
  const E = ctx.model.experts
  return {
    kind: 'wgsl',
    key: 'expert-drop',
    code,
    passes: [
      { entryPoint: 'accumulate', workgroupSize: 256, workgroups: (b: StageBatch) => Math.max(1, Math.ceil((b.tokens * ctx.slotsIn) / 256)) },
      { entryPoint: 'rank', workgroupSize: 256, workgroups: () => 1 },
      { entryPoint: 'emit', workgroupSize: 64, workgroups: (b: StageBatch) => Math.max(1, Math.ceil(b.tokens / 64)) },
    ],
    scratchWords: (b) => b.tokens * ctx.slotsIn + E + E * (EXACT_MASS_LIMBS + 2),
    counterWords: () => E * (1 + 2 * EXACT_MASS_LIMBS),
    params: (b) => [RENORM[options.renormalize], b.decode && !options.applyToDecode ? 1 : 0, skipped],
    skippedReason: DECODE_SKIPPED,
    dropReason: 'expert-drop',
  }
}
