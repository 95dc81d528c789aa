/**
 * Tiled gate matmul for large batches: logits[T×E] = x[T×H] · router[E×H]ᵀ with a workgroup per
 * tile of `bt` tokens × `be` experts. The team kernels (`gate.wgsl.ts`) re-read an x row and a
 * router row from memory for every output; here each K chunk of the tile's x rows and router
 * rows is staged once in workgroup memory (16-byte loads, the next chunk prefetched into
 * registers while the current one is used) and every invocation keeps `tm` × `tn` outputs in
 * registers, so an x element is read from memory once per expert tile instead of once per
 * expert, and a router element once per token tile instead of once per token.
 */

import { linearWorkgroup } from '../common/team.wgsl.js'

/** Init-time layout of the tiled gate kernel (one pipeline per layout). */
export interface GateTile {
  /** Tokens per workgroup tile. */
  readonly bt: number
  /** Experts per workgroup tile (E need not be a multiple: the surplus is computed on a clamped row and never written). */
  readonly be: number
  /** Tokens per invocation (a multiple-of-`bt/tm` stride apart). */
  readonly tm: number
  /** Experts per invocation (`be/tn` apart: neighbouring invocations take neighbouring experts). */
  readonly tn: number
  /** Invocations that split each staged K chunk (their partial sums are added in workgroup memory at the end). */
  readonly ks: number
  /** vec4 columns of H per staged K chunk (4·bk4 floats); H need not be a multiple (the tail reads zeros). */
  readonly bk4: number
}

/** Numbers derived from a {@link GateTile}. */
export interface GateTileDims {
  /** Invocations along experts (`be/tn`). */
  readonly ne: number
  /** Invocations along tokens (`bt/tm`). */
  readonly nt: number
  /** Invocations per workgroup (`ne·nt·ks`). */
  readonly wg: number
  /** Row stride of the staged chunks in vec4: `bk4` + 1 (the pad spreads rows read together over the banks). */
  readonly stride: number
  /** Workgroup memory in bytes: (bt + be) staged rows of `stride` vec4. */
  readonly bytes: number
  /** vec4 partial sums per invocation in the split-K reduction (tm·tn rounded up to 4, over 4). */
  readonly q: number
}

/** Derived sizes of a tile (no validation: see {@link gateTileProblem}). */
export function gateTileDims(t: GateTile): GateTileDims {
  const ne = t.be / t.tn
  const nt = t.bt / t.tm
  const stride = t.bk4 + 1
  return { ne, nt, wg: ne * nt * t.ks, stride, bytes: (t.bt + t.be) * stride * 16, q: Math.ceil((t.tm * t.tn) / 4) }
}

/**
 * Why `t` is not a usable tile on a device with these limits, or null. Limits default to what
 * every WebGPU device has (256 invocations, 16 KiB of workgroup memory).
 */
export function gateTileProblem(t: GateTile, limits: { maxInvocations?: number; maxWgBytes?: number } = {}): string | null {
  for (const k of ['bt', 'be', 'tm', 'tn', 'ks', 'bk4'] as const) {
    if (!Number.isInteger(t[k]) || t[k] < 1 || t[k] > 1024) return `gate tile ${k} must be an integer in 1..1024 (got ${t[k]})`
  }
  if (t.bt % t.tm) return `gate tile bt ${t.bt} is not a multiple of tm ${t.tm}`
  if (t.be % t.tn) return `gate tile be ${t.be} is not a multiple of tn ${t.tn}`
  if (t.bk4 % t.ks) return `gate tile bk4 ${t.bk4} is not a multiple of ks ${t.ks}`
  const d = gateTileDims(t)
  const maxInv = limits.maxInvocations ?? 256
  const maxBytes = limits.maxWgBytes ?? 16384
  if (d.wg > maxInv) return `gate tile needs ${d.wg} invocations per workgroup (be/tn · bt/tm · ks), the device allows ${maxInv}`
  if (d.bytes > maxBytes) return `gate tile needs ${d.bytes} bytes of workgroup memory ((bt + be)·(bk4 + 1)·16), the device allows ${maxBytes}`
  // the split-K partials of invocations ks ≥ 1 reuse the staged rows
  if (t.ks > 1 && (t.ks - 1) * d.nt * d.ne * d.q > (t.bt + t.be) * d.stride) return `gate tile's split-K partials ((ks − 1)·${d.nt * d.ne}·${d.q} vec4) do not fit its ${(t.bt + t.be) * d.stride} staged vec4`
  return null
}

/** Short cache-key fragment of a tile. */
export const gateTileKey = (t: GateTile): string => `bt${t.bt}be${t.be}tm${t.tm}tn${t.tn}ks${t.ks}bk${t.bk4}`

const range = (n: number) => Array.from({ length: n }, (_, i) => i)

/**
 * WGSL of the tiled gate kernel; bindings as the team kernels: x (T×H f32, read as vec4),
 * router (E×H), logits (T×E), uniforms (T, E, H/4). Grid: ceil(T/bt)·ceil(E/be) workgroups
 * (expert tiles fastest, so neighbouring workgroups share x rows in cache), spread by `grid1d`.
 *
 * Invocation `lid` = (ty, kq, tx) with tx fastest: it owns tokens t0 + ty + i·nt (i < tm) and
 * experts e0 + tx + j·ne (j < tn), and the chunk columns kq, kq + ks, …. Rows past T or E are
 * clamped to the last row (read, summed, never written); columns past H/4 read zeros.
 */
export function gateTiledWgsl(t: GateTile): string {
  const { bt, be, tm, tn, ks, bk4 } = t
  const { ne, nt, wg, stride: S, q: Q } = gateTileDims(t)
  const xl = Math.ceil((bt * bk4) / wg) // staged x vec4 per invocation
  const rl = Math.ceil((be * bk4) / wg) // staged router vec4 per invocation
  const I = range(tm)
  const J = range(tn)
  const acc = (i: number, j: number) => `a${i}_${j}`
  // staging: invocation lid moves element idx = lid + n·wg of the chunk (row idx / bk4, column idx % bk4)
  const stage = (n: number, count: number) => ({ idx: `lid + ${n * wg}u`, guard: (n + 1) * wg > count })
  const xs = range(xl).map((n) => stage(n, bt * bk4))
  const rs = range(rl).map((n) => stage(n, be * bk4))
  const prefetch = (k0: string) =>
    [
      ...xs.map((s, n) => `px${n} = xLoad(t0, ${s.idx}, ${k0});`),
      ...rs.map((s, n) => `pr${n} = rLoad(e0, ${s.idx}, ${k0});`),
    ].join('\n    ')
  const store = [
    ...xs.map((s, n) => `${s.guard ? `if (${s.idx} < ${bt * bk4}u) { ` : ''}tiles[xsAt${n}] = px${n};${s.guard ? ' }' : ''}`),
    ...rs.map((s, n) => `${s.guard ? `if (${s.idx} < ${be * bk4}u) { ` : ''}tiles[rsAt${n}] = pr${n};${s.guard ? ' }' : ''}`),
  ].join('\n    ')
  const fma4 = (a: string, xv: string, rv: string) => `${a} = fma(${xv}.w, ${rv}.w, fma(${xv}.z, ${rv}.z, fma(${xv}.y, ${rv}.y, fma(${xv}.x, ${rv}.x, ${a}))));`
  // the tm·tn accumulators in groups of 4 (split-K partials move as vec4)
  const flat = I.flatMap((i) => J.map((j) => acc(i, j)))
  const groups = range(Q).map((g) => range(4).map((c) => flat[g * 4 + c]))
  const vecOf = (g: string[]) => `vec4<f32>(${g.map((a) => a ?? '0.0').join(', ')})`
  const reduce =
    ks === 1
      ? ''
      : /* wgsl */ `
  // split-K: invocations kq ≥ 1 leave their partial sums in the (now free) staged rows, kq = 0 adds them in order
  let slot = ty * ${ne}u + tx;
  if (kq > 0u) {
    let at = ((kq - 1u) * ${nt * ne}u + slot) * ${Q}u;
    ${groups.map((g, n) => `tiles[at + ${n}u] = ${vecOf(g)};`).join('\n    ')}
  }
  workgroupBarrier();
  if (kq > 0u) { return; }
  for (var r = 0u; r < ${ks - 1}u; r = r + 1u) {
    let at = (r * ${nt * ne}u + slot) * ${Q}u;
    ${groups
      .map((g, n) => `let p${n} = tiles[at + ${n}u];\n    ${g.map((a, c) => (a ? `${a} = ${a} + p${n}.${'xyzw'[c]};` : '')).join(' ')}`)
      .join('\n    ')}
  }`
  return /* wgsl */ `struct Params { tokens: u32, experts: u32, h4: u32, _pad: u32 };
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
@group(0) @binding(1) var<storage, read> router: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> logits: array<f32>;
@group(0) @binding(3) var<uniform> params: Params;

// the K chunk: rows 0..${bt - 1} the tile's x rows, rows ${bt}..${bt + be - 1} its router rows; ${bk4} vec4 per row + 1 pad
var<workgroup> tiles: array<vec4<f32>, ${(bt + be) * S}>;

// element idx (row idx / ${bk4}, column idx % ${bk4}) of the x chunk at vec4 column k0; rows clamped to T, columns past H read 0
fn xLoad(t0: u32, idx: u32, k0: u32) -> vec4<f32> {
  let c = k0 + idx % ${bk4}u;
  let t = min(t0 + idx / ${bk4}u, params.tokens - 1u);
  let v = x[t * params.h4 + min(c, params.h4 - 1u)];
  return select(vec4<f32>(0.0), v, c < params.h4);
}

fn rLoad(e0: u32, idx: u32, k0: u32) -> vec4<f32> {
  let c = k0 + idx % ${bk4}u;
  let e = min(e0 + idx / ${bk4}u, params.experts - 1u);
  let v = router[e * params.h4 + min(c, params.h4 - 1u)];
  return select(vec4<f32>(0.0), v, c < params.h4);
}

@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  ${linearWorkgroup}
  let eTiles = (params.experts + ${be - 1}u) / ${be}u;
  let t0 = (wgLinear / eTiles) * ${bt}u;
  if (t0 >= params.tokens) { return; }
  let e0 = (wgLinear % eTiles) * ${be}u;
  let tx = lid % ${ne}u;
  let kq = (lid / ${ne}u) % ${ks}u;
  let ty = lid / ${ne * ks}u;
  // where this invocation stages its elements, and where its operands start in the chunk
  ${xs.map((s, n) => `let xsAt${n} = ((${s.idx}) / ${bk4}u) * ${S}u + (${s.idx}) % ${bk4}u;`).join('\n  ')}
  ${rs.map((s, n) => `let rsAt${n} = (${bt}u + (${s.idx}) / ${bk4}u) * ${S}u + (${s.idx}) % ${bk4}u;`).join('\n  ')}
  ${I.map((i) => `let xAt${i} = (ty + ${i * nt}u) * ${S}u + kq;`).join('\n  ')}
  ${J.map((j) => `let rAt${j} = (${bt}u + tx + ${j * ne}u) * ${S}u + kq;`).join('\n  ')}
  ${xs.map((_, n) => `var px${n} = vec4<f32>(0.0);`).join(' ')}
  ${rs.map((_, n) => `var pr${n} = vec4<f32>(0.0);`).join(' ')}
  if (params.h4 > 0u) {
    ${prefetch('0u')}
  }
  ${flat.map((a) => `var ${a} = 0.0;`).join(' ')}
  for (var k0 = 0u; k0 < params.h4; k0 = k0 + ${bk4}u) {
    ${store}
    workgroupBarrier();
    if (k0 + ${bk4}u < params.h4) {
    ${prefetch(`k0 + ${bk4}u`)}
    }
    for (var u = 0u; u < ${bk4}u; u = u + ${ks}u) {
      ${I.map((i) => `let xv${i} = tiles[xAt${i} + u];`).join(' ')}
      ${J.map((j) => `let rv${j} = tiles[rAt${j} + u];`).join(' ')}
      ${I.flatMap((i) => J.map((j) => fma4(acc(i, j), `xv${i}`, `rv${j}`))).join('\n      ')}
    }
    workgroupBarrier();
  }${reduce}
  ${I.map((i) => `let tok${i} = t0 + ty + ${i * nt}u;`).join(' ')}
  ${J.map((j) => `let exp${j} = e0 + tx + ${j * ne}u;`).join(' ')}
  ${I.flatMap((i) => J.map((j) => `if (tok${i} < params.tokens && exp${j} < params.experts) { logits[tok${i} * params.experts + exp${j}] = ${acc(i, j)}; }`)).join('\n  ')}
}`
}
