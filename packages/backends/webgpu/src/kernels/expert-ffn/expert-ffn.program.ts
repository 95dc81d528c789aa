import { uniforms, type Dispatch, type KernelProgram } from '../../gpu/program.js'
import { GEMM_BM, GEMM_BN, gemmWgsl } from './expert-gemm.wgsl.js'
import { gemvDownWgsl, gemvGateUpWgsl, type ExpertGemvConsts } from './expert-gemv.wgsl.js'
import { multiRowSharedVec4, multiRowWgsl, multiRowWorkgroup, type ExpertMultiRowConsts } from './expert-multirow.wgsl.js'

/** Weight storage of the expert kernels. */
export type WeightsDtype = 'f32' | 'f16'

/** Init-time layout of the decode kernels (weights dtype aside). */
export type GemvLayout = Omit<ExpertGemvConsts, 'dtype'>

const gemvKey = (l: GemvLayout) => `wg=${l.wg}|rows=${l.rows}|mt=${l.mt}|kc=${l.kc}|sg=${l.subgroupSize ?? 'none'}`

/**
 * Decode layout for a reduction length of `kChunks` 8-wide chunks over `mats` weight matrices
 * (2 for gate+up, 1 for down): 4 weight rows per workgroup and the fewest invocations (a power
 * of two, at least one subgroup and the rows·mt that finish a block, at most `maxWg`) that
 * keep each invocation's stationary weights within 16 chunks (64 registers).
 */
export function gemvLayout(kChunks: number, mt: number, subgroupSize: number | null, opts: { rows?: number; mats?: number; maxWg?: number } = {}): GemvLayout {
  const rows = opts.rows ?? 4
  const mats = opts.mats ?? 1
  const maxWg = Math.max(32, opts.maxWg ?? 256)
  let wg = Math.max(subgroupSize ?? 32, nextPow2(rows * mt))
  while (wg < maxWg && rows * mats * Math.ceil(kChunks / wg) > 16) wg *= 2
  return { wg: Math.min(wg, 2 ** Math.floor(Math.log2(maxWg))), rows, mt, subgroupSize, kc: kChunks }
}

const nextPow2 = (n: number) => 2 ** Math.ceil(Math.log2(Math.max(1, n)))

/** Run parameters of the decode gate+up kernel. */
export interface GemvGateUpParams {
  readonly tokens: number
  readonly hidden: number
  readonly intermediate: number
  readonly experts: number
  /** Workgroup rows = slots of the non-empty expert list (at most E; more slots only exit). */
  readonly slots: number
}

/** Decode gate+up; bindings: x ((T+1)×H, last row zero), rowToken, offsets (E+1 offsets, then the non-empty expert list), gate, up, act (R×I). */
export function gemvGateUpProgram(dtype: WeightsDtype, layout: GemvLayout): KernelProgram<GemvGateUpParams> {
  return {
    name: 'experts-gemv-gate-up',
    cacheKey: `gemv-gate-up|${dtype}|${gemvKey(layout)}`,
    getShaderSource: () => gemvGateUpWgsl({ ...layout, dtype }),
    getRunData: ({ tokens, hidden, intermediate, experts, slots }) => ({
      dispatch: [Math.ceil(intermediate / layout.rows), Math.max(1, Math.min(experts, slots)), 1],
      uniforms: uniforms([tokens, hidden / 8, intermediate, experts]),
    }),
  }
}

/** Run parameters of the decode down kernel. */
export interface GemvDownParams {
  readonly hidden: number
  readonly intermediate: number
  readonly experts: number
  readonly rowsTotal: number
  /** As for gate+up. */
  readonly slots: number
}

/** Decode down; bindings: act (R×I), offsets, down, y (R×H). */
export function gemvDownProgram(dtype: WeightsDtype, layout: GemvLayout): KernelProgram<GemvDownParams> {
  return {
    name: 'experts-gemv-down',
    cacheKey: `gemv-down|${dtype}|${gemvKey(layout)}`,
    getShaderSource: () => gemvDownWgsl({ ...layout, dtype }),
    getRunData: ({ hidden, intermediate, experts, rowsTotal, slots }) => ({
      dispatch: [Math.ceil(hidden / layout.rows), Math.max(1, Math.min(experts, slots)), 1],
      uniforms: uniforms([hidden, intermediate / 8, rowsTotal, experts]),
    }),
  }
}

/** Run parameters of the grouped GEMM kernels. */
export interface GemmParams {
  readonly tokens: number
  readonly kdim: number
  readonly ndim: number
  readonly experts: number
  readonly rowsTotal: number
  /** Largest group (rows) when known on the host; else `indirect` args from the offsets kernel. */
  readonly maxRows?: number
  readonly indirect?: { readonly buffer: GPUBuffer; readonly offset: number }
}

function gemmDispatch(p: GemmParams): Dispatch {
  if (p.indirect) return { indirect: p.indirect.buffer, offset: p.indirect.offset }
  return [Math.ceil(p.ndim / GEMM_BN), Math.ceil((p.maxRows ?? 0) / GEMM_BM), p.experts]
}

/**
 * Prefill grouped GEMM. `gateup` bindings: x, rowToken, offsets, gate, up, act;
 * `down` bindings: act, offsets, down, y.
 */
export function gemmProgram(dtype: WeightsDtype, kind: 'gateup' | 'down'): KernelProgram<GemmParams> {
  return {
    name: kind === 'gateup' ? 'experts-gemm-gate-up' : 'experts-gemm-down',
    cacheKey: `gemm|${kind}|${dtype}|${GEMM_BM}x${GEMM_BN}`,
    getShaderSource: () => gemmWgsl({ dtype, kind }),
    getRunData: (p) => ({ dispatch: gemmDispatch(p), uniforms: uniforms([p.tokens, p.kdim, p.ndim, p.rowsTotal]) }),
  }
}

export { GEMM_BM, GEMM_BN }

/** Layout of one multi-row decode kernel (see `ExpertMultiRowConsts`; dtype, kind and K aside). */
export type MultiRowLayout = Pick<ExpertMultiRowConsts, 'mt' | 'nr' | 'ks' | 'cpt' | 'wr' | 'pf' | 'fm'>

/** A layout's label, `mt16/nr32/ks8/cpt2[/wr2][/pf2][/fm]` (fields at their defaults left out), as benchmarks print it. */
export function multiRowLayoutLabel(l: MultiRowLayout): string {
  return `mt${l.mt}/nr${l.nr}/ks${l.ks}/cpt${l.cpt}${(l.wr ?? 1) > 1 ? `/wr${l.wr}` : ''}${(l.pf ?? 0) > 0 ? `/pf${l.pf}` : ''}${l.fm ? '/fm' : ''}`
}

/**
 * A row of the multi-row plan table: the layouts used while the typical group has at most
 * `maxRows` rows — for a kernel whose reduction length K (H for gate+up, I for down) is at
 * least `minK` when set (a table lists such a row before the row of the same `maxRows` without
 * it). A layout with `mt` 0 means the single-row GEMV kernels.
 */
export interface MultiRowPlan {
  /** Largest typical group (rows) the row covers; `Infinity`: every size past the rows before it. */
  readonly maxRows: number
  readonly minK?: number
  readonly gateup: MultiRowLayout
  readonly down: MultiRowLayout
}

const SINGLE_ROW: MultiRowLayout = { mt: 0, nr: 0, ks: 0, cpt: 0 }

/**
 * Multi-row decode plans measured on an H100 80GB HBM3 (Dawn/Vulkan, 2026-12-06,
 * bench/results/multirow-wr-h100/: Mixtral-8x7B and OLMoE-1B-7B at T = 1, 4, 8, 32 and 128,
 * each kernel's GPU time over 14–19 layouts, gate+up and down chosen separately): every typical
 * group size runs the multi-row kernels, from one row (T = 1: Mixtral gate+up 0.170 vs 0.182 ms
 * single-row, OLMoE T = 8 0.208 vs 0.244 ms for both kernels), with two or four weight rows per
 * invocation (`wr`) from two rows per group; long reductions (K ≥ 4096: Mixtral's gate+up
 * K = 4096 and down K = 14336) take their own rows from 8 rows per group (Mixtral T = 32 down
 * 0.435 vs 0.513 ms with the short-K layout, which OLMoE's down, K = 1024, needs: 0.133 vs
 * 0.352). Then (bench/results/prefetch-h100/, same GPU, each layout with and without): fma
 * chains (`fm`) everywhere — Mixtral T = 32 gate+up 0.816 → 0.785 ms, down 0.435 → 0.418;
 * T = 128 gate+up 2.28 → 2.10, down 1.41 → 1.28; OLMoE T = 128 0.438 → 0.420 and 0.236 →
 * 0.218 — and the next tile's weights loaded a tile ahead (`pf` 2) for the down kernel of two-row
 * groups (Mixtral T = 8: 0.348 → 0.325 ms); `pf` 2 costs the other kernels (registers), `pf` 1
 * changes nothing. Past 32 rows per group the 32-row layouts loop over blocks of 32 rows (the
 * weights read once per block): faster than the GEMM and than the single-row kernels at every
 * size measured (bench/results/multirow-large-h100/, layer ms per call, this table vs the one
 * that stopped at 32 rows: Mixtral T = 256 / 512 / 1024 / 2048 6.1 / 11.4 / 22.5 / 44.0 vs
 * 18.9 / 21.2 / 38.0 / 70.3; OLMoE T = 512 / 1024 / 2048 2.3 / 4.2 / 7.4 vs 6.1 / 6.3 / 10.9), so
 * its last rows cover every size and `auto` runs them there. Other GPUs run this table too (reading the activations from workgroup memory
 * fewer times per FMA helps any GPU whose workgroup-memory bandwidth bounds these kernels); the
 * H200 keeps its own measured table.
 */
export const DEFAULT_MULTIROW_PLANS: readonly MultiRowPlan[] = [
  { maxRows: 1, gateup: { mt: 2, nr: 8, ks: 16, cpt: 4, fm: true }, down: { mt: 2, nr: 8, ks: 16, cpt: 4, fm: true } },
  { maxRows: 2, gateup: { mt: 8, nr: 32, ks: 8, cpt: 2, wr: 2, fm: true }, down: { mt: 8, nr: 32, ks: 8, cpt: 2, wr: 2, pf: 2, fm: true } },
  { maxRows: 8, minK: 4096, gateup: { mt: 16, nr: 32, ks: 8, cpt: 2, wr: 2, fm: true }, down: { mt: 16, nr: 32, ks: 8, cpt: 1, wr: 4, fm: true } },
  { maxRows: 8, gateup: { mt: 16, nr: 32, ks: 8, cpt: 2, wr: 2, fm: true }, down: { mt: 16, nr: 32, ks: 8, cpt: 2, wr: 2, fm: true } },
  { maxRows: Infinity, minK: 4096, gateup: { mt: 32, nr: 64, ks: 4, cpt: 2, wr: 2, fm: true }, down: { mt: 32, nr: 64, ks: 8, cpt: 2, wr: 4, fm: true } },
  { maxRows: Infinity, gateup: { mt: 32, nr: 128, ks: 2, cpt: 2, fm: true }, down: { mt: 32, nr: 64, ks: 4, cpt: 2, wr: 4, fm: true } },
]

/**
 * The plans measured on an H200 before `wr` existed: the fastest of 6 layouts × block sizes at
 * Mixtral-8x7B T = 8, 32 and 128 (Dawn/Vulkan, 2026-12-05, `bench/gpu-run.sh OUT multirow`,
 * bench/results/multirow-h200/): 0.93 / 1.72 / 5.01 ms per layer call against 1.40 / 3.44 /
 * 11.28 for the single-row kernels; one row per group runs the single-row GEMV kernels.
 */
export const H200_MULTIROW_PLANS: readonly MultiRowPlan[] = [
  { maxRows: 1, gateup: SINGLE_ROW, down: SINGLE_ROW },
  { maxRows: 2, gateup: { mt: 4, nr: 16, ks: 8, cpt: 4 }, down: { mt: 4, nr: 16, ks: 8, cpt: 4 } },
  { maxRows: 8, gateup: { mt: 16, nr: 32, ks: 4, cpt: 4 }, down: { mt: 16, nr: 32, ks: 4, cpt: 4 } },
  { maxRows: 32, gateup: { mt: 32, nr: 128, ks: 2, cpt: 2 }, down: { mt: 32, nr: 128, ks: 2, cpt: 2 } },
]

/**
 * Measured multi-row plan tables by GPU model (the adapter's `device` string, as Dawn reports
 * it); other GPUs run {@link DEFAULT_MULTIROW_PLANS}.
 */
export const MULTIROW_PLANS_BY_GPU: Readonly<Record<string, readonly MultiRowPlan[]>> = {
  'nvidia-h200': H200_MULTIROW_PLANS,
  'nvidia-h100-80gb-hbm3': DEFAULT_MULTIROW_PLANS,
}

/** The multi-row plan table of a GPU model (its adapter's `device` string): its measured table, else {@link DEFAULT_MULTIROW_PLANS}. */
export function multiRowPlansForGpu(adapterDevice: string): readonly MultiRowPlan[] {
  return Object.prototype.hasOwnProperty.call(MULTIROW_PLANS_BY_GPU, adapterDevice) ? MULTIROW_PLANS_BY_GPU[adapterDevice] : DEFAULT_MULTIROW_PLANS
}

/**
 * The multi-row layouts for a typical group of `rowsHint` rows, each kernel's from the first
 * plan whose `maxRows` covers the group and whose `minK` (if any) its reduction length `k`
 * reaches (gate+up: H, down: I; without `k`, rows with `minK` are skipped); null where the
 * single-row GEMV kernels run (a layout with `mt` 0, or past the table). Layouts whose
 * workgroup or workgroup memory exceed the device's limits halve `cpt`, then `nr`.
 */
export function multiRowPlanFor(rowsHint: number, plans: readonly MultiRowPlan[], limits: { maxWg: number; maxWgBytes: number }, k?: { gateup: number; down: number }): MultiRowPlan | null {
  const pick = (K: number) => plans.find((q) => rowsHint <= q.maxRows && K >= (q.minK ?? 0))
  const pg = pick(k?.gateup ?? 0)
  const pd = pick(k?.down ?? 0)
  if (!pg || !pd || pg.gateup.mt === 0 || pd.down.mt === 0) return null
  const fit = (l: MultiRowLayout): MultiRowLayout => {
    let { nr, cpt } = l
    const wr = l.wr ?? 1
    while (cpt > 1 && 16 * multiRowSharedVec4({ ...l, nr, cpt }) > limits.maxWgBytes) cpt = Math.max(1, cpt >> 1)
    while (nr > wr && (multiRowWorkgroup({ ...l, nr }) > limits.maxWg || 16 * multiRowSharedVec4({ ...l, nr, cpt }) > limits.maxWgBytes)) {
      nr = Math.max(wr, nr >> 1)
      nr -= nr % wr // wr divides nr
    }
    return { ...l, nr, cpt }
  }
  return { maxRows: pg.maxRows, gateup: fit(pg.gateup), down: fit(pd.down) }
}

/** Run parameters of the multi-row decode kernels. */
export interface MultiRowParams {
  /** T (gate+up: the zero row of x for padding tokens). */
  readonly tokens: number
  /** Output columns: I for gate+up, H for down. */
  readonly ndim: number
  readonly rowsTotal: number
  readonly experts: number
  /** Workgroup rows = slots of the non-empty expert list, as for the GEMV kernels. */
  readonly slots: number
}

/**
 * Multi-row decode kernel (groups of any size, blocks of up to `mt` rows). `gateup` bindings: x ((T+1)×H), rowToken,
 * offsets, gate, up, act (R×I); `down` bindings: act, offsets, down, y (R×H). `kc` is K/8.
 */
export function multiRowProgram(dtype: WeightsDtype, kind: 'gateup' | 'down', layout: MultiRowLayout, kc: number): KernelProgram<MultiRowParams> {
  const c: ExpertMultiRowConsts = { dtype, kind, kc, ...layout }
  return {
    name: kind === 'gateup' ? 'experts-multirow-gate-up' : 'experts-multirow-down',
    cacheKey: `multirow|${kind}|${dtype}|mt=${c.mt}|nr=${c.nr}|ks=${c.ks}|cpt=${c.cpt}|wr=${c.wr ?? 1}|pf=${c.pf ?? 0}|fm=${c.fm ? 1 : 0}|kc=${kc}`,
    getShaderSource: () => multiRowWgsl(c),
    getRunData: ({ tokens, ndim, rowsTotal, experts, slots }) => ({
      dispatch: [Math.ceil(ndim / layout.nr), Math.max(1, Math.min(experts, slots)), 1],
      uniforms: uniforms([tokens, ndim, rowsTotal, experts]),
    }),
  }
}
