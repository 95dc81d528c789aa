import { siluWgsl } from '../common/team.wgsl.js'
import { activeExpertPrologue, weightDecl } from './expert-gemv.wgsl.js'

/**
 * Init-time constants of the multi-row decode kernels (groups of any size per expert, in blocks of `mt` rows).
 *
 * Layout (output-stationary over weight rows, rows of the group in registers): a workgroup
 * owns `nr` consecutive weight rows of one expert (of gate and up together, or of down);
 * `ks` adjacent invocations split the K chunks of one weight row, so one load instruction of
 * a subgroup reads `ks`·16 contiguous bytes of each of 32/`ks` rows. Each invocation keeps
 * the partial sums of its weight row against up to `mt` group rows in registers over the whole
 * K loop, so every weight is read from memory once per block of `mt` group rows (once per call
 * when the group fits, which the plan table arranges). The group's activation rows are staged
 * through workgroup memory in tiles of `cpt`·`ks` chunks (f32, zero past the group / K), one
 * barrier pair per tile, and read back as broadcasts (invocations of one weight row read the
 * same address). Rows past the group skip their FMAs in blocks of 4 (uniform branches).
 * After the K loop the `ks` partial sums of each (weight row, group row) are reduced through
 * the same workgroup memory in a few passes (one barrier pair each).
 *
 * With `wr` > 1 an invocation owns `wr` weight rows (rows rl, rl + nr/wr, …: each load
 * instruction of a subgroup stays contiguous per row), so every activation value read from
 * workgroup memory feeds `wr` times as many FMAs: from 8 or more rows per group the kernel is
 * bound by those reads (a down projection reads one vec4 per 4 FMAs with `wr` 1).
 */
export interface ExpertMultiRowConsts {
  readonly dtype: 'f32' | 'f16'
  /** `gateup`: act = silu(x·gateᵀ)·(x·upᵀ) of the gathered rows; `down`: y = act·downᵀ. */
  readonly kind: 'gateup' | 'down'
  /** Group rows per block (a multiple of 4, or 2). */
  readonly mt: number
  /** Weight rows per workgroup. */
  readonly nr: number
  /** Invocations per weight row (split of K). */
  readonly ks: number
  /** Chunks (8 values) per invocation per staged tile: weight loads in flight per matrix and weight row. */
  readonly cpt: number
  /** Weight rows per invocation (default 1; divides `nr`): the workgroup has nr·ks/wr invocations. */
  readonly wr?: number
  /**
   * When a tile's weight loads are issued (default 0): 0 after the tile's activations are staged
   * (the loads wait for the staging barrier); 1 before staging them (the load latency overlaps the
   * staging and its barrier); 2 one tile ahead (the next tile's packed words are loaded into a
   * second set of registers before this tile's FMAs: a tile's whole compute hides the latency).
   */
  readonly pf?: 0 | 1 | 2
  /**
   * Multiply-accumulate as one `fma` chain per 8 values (8 instructions) instead of two `dot`s and
   * two adds (10): fewer ALU instructions where the group has enough rows for them to matter.
   */
  readonly fm?: boolean
  /** 8-wide chunks along K (H/8 for gate+up, I/8 for down). */
  readonly kc: number
}

const range = (n: number) => Array.from({ length: n }, (_, j) => j)

/** Invocations per workgroup of a layout: nr·ks/wr. */
export function multiRowWorkgroup(c: Pick<ExpertMultiRowConsts, 'nr' | 'ks' | 'wr'>): number {
  return (c.nr * c.ks) / (c.wr ?? 1)
}

/** Workgroup memory of the staged activation tile and the reduction, in vec4<f32>. */
export function multiRowSharedVec4(c: Pick<ExpertMultiRowConsts, 'mt' | 'nr' | 'ks' | 'cpt' | 'wr'>): number {
  const tile = c.mt * c.cpt * c.ks * 2
  const wg = multiRowWorkgroup(c)
  // a reduction pass stores at least one group row's values (2 matrices × wr rows) per invocation
  const minQ = Math.ceil((2 * (c.wr ?? 1)) / 4)
  return Math.max(tile, wg * Math.max(minQ, Math.floor(tile / wg)))
}

/** WGSL of a multi-row decode kernel (see `ExpertMultiRowConsts`); grid (ceil(N / nr), expert slots). */
export const multiRowWgsl = (c: ExpertMultiRowConsts): string => {
  const gateup = c.kind === 'gateup'
  const mats = gateup ? ['Gate', 'Up'] : ['Down']
  const M = range(c.mt)
  const J = range(c.cpt)
  const wr = c.wr ?? 1
  if (!Number.isInteger(wr) || wr < 1 || c.nr % wr !== 0) throw new RangeError(`multi-row layout: wr ${wr} must be a positive integer dividing nr ${c.nr}`)
  const R = range(wr)
  const nrw = c.nr / wr // invocation rows: invocation row rl owns weight rows rl + i·nrw
  const WG = multiRowWorkgroup(c)
  const BK = c.cpt * c.ks // chunks per staged tile
  const tileVec4 = c.mt * BK * 2
  const XV = multiRowSharedVec4(c)
  const stageIters = Math.ceil(tileVec4 / WG)
  const Q = Math.floor(XV / WG) // vec4 per invocation per reduction pass
  // values per (group row): one per matrix and owned weight row; a pass reduces 4·Q values of every invocation
  const perRow = mats.length * wr
  const rowsPerPass = Math.max(1, Math.floor((4 * Q) / perRow))
  const passes = range(Math.ceil(c.mt / rowsPerPass))
  const blocks = range(Math.ceil(c.mt / 4))
  const b0 = gateup ? 3 : 2
  const pf = c.pf ?? 0
  if (pf !== 0 && pf !== 1 && pf !== 2) throw new RangeError(`multi-row layout: pf ${String(pf)} must be 0, 1 or 2`)
  const acc = (mat: string, m: number, i = 0) => `a${mat}${wr > 1 ? `${i}_` : ''}${m}`
  const wv = (mat: string, i: number, j: number) => `w${mat}${wr > 1 ? `${i}_` : ''}${j}`
  const pv = (mat: string, i: number, j: number) => `p${mat}${wr > 1 ? `${i}_` : ''}${j}`
  const nv = (mat: string, i: number, j: number) => `n${mat}${wr > 1 ? `${i}_` : ''}${j}`
  const eachW = (f: (mat: string, i: number, j: number) => string, indent: string) =>
    J.map((j) => mats.map((mat) => R.map((i) => indent + f(mat, i, j)).join('\n')).join('\n')).join('\n')
  const chunkIdx = (base: string, j: number) => `min(${base} + ks + ${j * c.ks}u, ${c.kc - 1}u)`
  // the tile's weights: pf 0 loads (and converts) after the staging barrier; pf 1 loads the packed
  // words before staging; pf 2 takes the words loaded one tile earlier and loads the next tile's
  const loadsBefore =
    pf === 1
      ? eachW((mat, i, j) => `let ${pv(mat, i, j)} = raw${mat}(wrow${i} + ${chunkIdx('t0', j)});`, '      ')
      : pf === 2
        ? `${eachW((mat, i, j) => `let ${pv(mat, i, j)} = ${nv(mat, i, j)};`, '      ')}
      if (t0 + ${BK}u < ${c.kc}u) {
${eachW((mat, i, j) => `${nv(mat, i, j)} = raw${mat}(wrow${i} + ${chunkIdx(`t0 + ${BK}u`, j)});`, '        ')}
      }`
        : ''
  const loadsAfter =
    pf === 0
      ? eachW((mat, i, j) => `let ${wv(mat, i, j)} = load${mat}(wrow${i} + ${chunkIdx('t0', j)});`, '      ')
      : eachW((mat, i, j) => `let ${wv(mat, i, j)} = unpack${mat}(${pv(mat, i, j)});`, '      ')
  // a += w·x over 8 values: two dots and two adds, or (fm) one fma chain (8 instructions, not 10)
  const macc = (a: string, w: string) =>
    c.fm
      ? `${a} = ${['x', 'y', 'z', 'w'].reduce((e, q) => `fma(${w}[1].${q}, xb.${q}, ${e})`, ['x', 'y', 'z', 'w'].reduce((e, q) => `fma(${w}[0].${q}, xa.${q}, ${e})`, a))};`
      : `${a} = ${a} + dot(${w}[0], xa) + dot(${w}[1], xb);`
  // the block's activation rows, chunks t0 .. t0+BK, staged in workgroup memory
  const stageCode = `      // stage the block's rows, chunks t0 .. t0+${BK} (zero past the group and past K)
${range(stageIters)
  .map(
    (q) => `      {
        let i = lid + ${q * WG}u;
        let h = i % 2u;
        let cc = (i / 2u) % ${BK}u;
        let m = i / ${2 * BK}u;
        let gc = t0 + cc;
        var v = vec4<f32>(0.0);
        if (m < nb && gc < ${c.kc}u) {
${gateup
  ? `          let tk = rowToken[start + tb + m];
          let row = select(params.tokens, u32(tk), tk >= 0);`
  : `          let row = start + tb + m;`}
          v = x[row * ${2 * c.kc}u + 2u * gc + h];
        }
        ${tileVec4 % WG === 0 || q < stageIters - 1 ? '' : `if (i < ${tileVec4}u) `}{ sh[(h * ${c.mt}u + m) * ${BK}u + cc] = v; }
      }`,
  )
  .join('\n')}`
  const xRead = (m: number, j: number, h: 0 | 1) => `sh[${(h * c.mt + m) * BK}u + c${j}]`
  const prefetchFirst = pf === 2 ? eachW((mat, i, j) => `var ${nv(mat, i, j)} = raw${mat}(wrow${i} + ${chunkIdx('0u', j)});`, '    ') : ''
  return /* wgsl */ `
struct Params { tokens: u32, ndim: u32, rowsTotal: u32, experts: u32 };
@group(0) @binding(0) var<storage, read> x: array<vec4<f32>>;
${gateup ? '@group(0) @binding(1) var<storage, read> rowToken: array<i32>;' : ''}
@group(0) @binding(${b0 - 1}) var<storage, read> offsets: array<i32>;
${mats.map((m, i) => weightDecl(b0 + i, m, c.dtype)).join('\n')}
@group(0) @binding(${b0 + mats.length}) var<storage, read_write> outv: array<f32>;
@group(0) @binding(${b0 + mats.length + 1}) var<uniform> params: Params;
${gateup ? siluWgsl : ''}
var<workgroup> sh: array<vec4<f32>, ${XV}>;
var<workgroup> groupStart: u32;
var<workgroup> groupRows: u32;
var<workgroup> groupExpert: u32;
@compute @workgroup_size(${WG})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
${activeExpertPrologue}
  let ws = u32(offsets[2u * params.experts + 1u + e]);
  let N = params.ndim;
  let ks = lid % ${c.ks}u;
  let rl = lid / ${c.ks}u;
${R.map((i) => `  let wrow${i} = (ws * N + min(wid.x * ${c.nr}u + rl + ${i * nrw}u, N - 1u)) * ${c.kc}u;`).join('\n')}
  for (var tb = 0u; tb < n; tb = tb + ${c.mt}u) {
    let nb = min(n - tb, ${c.mt}u);
${mats.map((mat) => R.map((i) => M.map((m) => `    var ${acc(mat, m, i)} = 0.0;`).join('\n')).join('\n')).join('\n')}
${prefetchFirst}
    for (var t0 = 0u; t0 < ${c.kc}u; t0 = t0 + ${BK}u) {
${loadsBefore}
${stageCode}
      workgroupBarrier();
      // this invocation's weight chunks of the tile: loaded here, all in flight together (pf 0), or converted from the words loaded earlier (pf 1, 2)
${J.map((j) => `      let c${j} = ks + ${j * c.ks}u;`).join('\n')}
${loadsAfter}
${blocks
  .map((b) => {
    const rows = M.slice(4 * b, 4 * b + 4)
    const body = J.map((j) =>
      rows
        .map(
          (m) => `        { let xa = ${xRead(m, j, 0)}; let xb = ${xRead(m, j, 1)};
${mats.map((mat) => R.map((i) => `          ${macc(acc(mat, m, i), wv(mat, i, j))}`).join('\n')).join('\n')} }`,
        )
        .join('\n'),
    ).join('\n')
    return b === 0 ? `      {\n${body}\n      }` : `      if (nb > ${4 * b}u) {\n${body}\n      }`
  })
  .join('\n')}
      workgroupBarrier();
    }
    // reduce the ${c.ks} partial sums of each (weight row, group row); ${rowsPerPass} group rows per pass
${passes
  .map((p) => {
    const ms = M.slice(p * rowsPerPass, (p + 1) * rowsPerPass)
    // value index of (group row ml, owned row i, matrix k) = ml·perRow + i·mats + k
    const vals = ms.flatMap((m) => R.flatMap((i) => mats.map((mat) => acc(mat, m, i))))
    const stores = range(Math.ceil(vals.length / 4)).map((q) => {
      const v4 = range(4).map((k) => vals[4 * q + k] ?? '0.0')
      return `      sh[${q * WG}u + lid] = vec4<f32>(${v4.join(', ')});`
    })
    const outs = c.nr * ms.length
    const sumOf = (mat: number) => {
      // value vi → vec4 q = vi / 4, component vi % 4, of the ks invocations of invocation row rl
      return `${range(c.ks)
        .map((s) => `sh[(vi${mat} / 4u) * ${WG}u + rl2 * ${c.ks}u + ${s}u][vi${mat} % 4u]`)
        .join(' + ')}`
    }
    return `    if (nb > ${p * rowsPerPass}u) {
${stores.join('\n')}
      workgroupBarrier();
      for (var o = lid; o < ${outs}u; o = o + ${WG}u) {
        let r = o % ${c.nr}u;
        let ml = o / ${c.nr}u;
        let m = ${p * rowsPerPass}u + ml;
        let col = wid.x * ${c.nr}u + r;
        let rl2 = r % ${nrw}u;
${mats.map((_, k) => `        let vi${k} = ml * ${perRow}u + (r / ${nrw}u) * ${mats.length}u + ${k}u;\n        let s${k} = ${sumOf(k)};`).join('\n')}
        if (m < nb && col < N) { outv[(start + tb + m) * N + col] = ${gateup ? 'silu(s0) * s1' : 's0'}; }
      }
      workgroupBarrier();
    }`
  })
  .join('\n')}
  }
}`
}
