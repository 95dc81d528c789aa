/**
 * Grouped int8 GEMMs (W8A8) of the prefill experts, with the dequant epilogue
 * y = fl32(fl32(f32(acc) · s_a[row]) · s_w[col]) (gate+up: act = silu(g)·u).
 *
 * Operands (both kernels):
 * - A: rowsAlloc × K int8 row-major (quantized activations gathered in dispatch order, so
 *   expert e's rows are offsets[e]..offsets[e+1], contiguous), packed 4 per u32; rowsAlloc
 *   leaves at least BM spare rows after the last group so a tile may read past it;
 * - B: per expert the K×N int8 matrix (the `nn.Linear` N×K weight transposed) in the tiled
 *   layout of `weights-int8.ts` (32 k × 16 n blocks of 512 contiguous bytes), packed 4 per u32;
 * - scales: s_a per row, s_w per expert and output channel (E×N).
 * Grid (ceil(N/BN), row tiles, E); a tile whose first row is past its expert's group exits.
 */
import { linearWorkgroup, siluWgsl } from '../common/team.wgsl.js'

/** Which GEMM: `gateup` (two weight matrices, silu·up epilogue) or `down`. */
export type Int8GemmKind = 'gateup' | 'down'

const mats = (kind: Int8GemmKind) => (kind === 'gateup' ? ['Gate', 'Up'] : ['Down'])
const range = (n: number) => Array.from({ length: n }, (_, i) => i)

/**
 * Bindings shared by both kernels: A, sa, offsets, B per matrix, scale per matrix, out, params.
 * That is 8 storage buffers for gate+up (the WebGPU default limit).
 */
function bindings(kind: Int8GemmKind, aType: string, bType: string): string {
  const m = mats(kind)
  const lines = [
    `@group(0) @binding(0) var<storage, read> A: array<${aType}>;`,
    '@group(0) @binding(1) var<storage, read> sa: array<f32>;',
    '@group(0) @binding(2) var<storage, read> offsets: array<i32>;',
    ...m.map((x, i) => `@group(0) @binding(${3 + i}) var<storage, read> B${x}: array<${bType}>;`),
    ...m.map((x, i) => `@group(0) @binding(${3 + m.length + i}) var<storage, read> s${x}: array<f32>;`),
    `@group(0) @binding(${3 + 2 * m.length}) var<storage, read_write> outv: array<f32>;`,
    `@group(0) @binding(${4 + 2 * m.length}) var<uniform> params: Params;`,
  ]
  return `struct Params { kdim: u32, ndim: u32, rowsAlloc: u32, _a: u32 };\n${lines.join('\n')}`
}

/** WGSL statement writing output (row, col) from i32 accumulators `acc<Mat>` given as expressions. */
function epilogue(kind: Int8GemmKind, acc: (mat: string) => string, indent: string): string {
  const deq = (m: string) => `f32(${acc(m)}) * sr * s${m}[e * N + col]`
  return kind === 'gateup'
    ? `${indent}outv[(start + row) * N + col] = silu(${deq('Gate')}) * (${deq('Up')});`
    : `${indent}outv[(start + row) * N + col] = ${deq('Down')};`
}

/**
 * Group bounds of workgroup `wid.z`, the workgroup's column tile `wgCol` and first row tile
 * `wgRow`, then the row-tile loop. `inWs`: the bounds live in words `inWs`, `inWs` + 1 of Ws
 * (the staged kernel keeps Ws its only workgroup variable), else in the scalars groupStart /
 * groupRows. `rowsFirst`: consecutive workgroups (the dispatch order, x fastest) take the row
 * tiles of one column tile, so the workgroups that read one B column tile run together and
 * read it from memory about once, the group's A tiles shared through L2; else (x, y) = (column
 * tile, row tile).
 */
const groupPrologue = (bm: number, inWs?: number, rowsFirst = false) => `  let e = wid.z;
${
  rowsFirst
    ? `  ${linearWorkgroup}
  let wgCol = wgLinear / nwg.y;
  let wgRow = wgLinear % nwg.y;`
    : `  let wgCol = wid.x;
  let wgRow = wid.y;`
}
${
  inWs === undefined
    ? `  if (lid == 0u) { groupStart = u32(offsets[e]); groupRows = u32(offsets[e + 1u] - offsets[e]); }
  let n = workgroupUniformLoad(&groupRows);
  let start = workgroupUniformLoad(&groupStart);`
    : `  if (lid == 0u) { Ws[${inWs}] = offsets[e]; Ws[${inWs + 1}] = offsets[e + 1u] - offsets[e]; }
  let n = u32(workgroupUniformLoad(&Ws[${inWs + 1}]));
  let start = u32(workgroupUniformLoad(&Ws[${inWs}]));`
}
  // row tiles wgRow, wgRow + grid y, …: a grid with fewer row tiles than the largest group loops
  for (var m0 = wgRow * ${bm}u; m0 < n; m0 = m0 + nwg.y * ${bm}u) {
  let K = params.kdim;
  let N = params.ndim;`

/** Tile of the portable kernel: 64×64 outputs per workgroup of 256, 4×4 per invocation, K step 64. */
export const DOT4_BM = 64
export const DOT4_BN = 64

/**
 * Portable int8 GEMM on `dot4I8Packed` (core WGSL `packed_4x8_integer_dot_product`).
 * Per K step of 64: A's 64×64-byte tile is staged as [row][k-word] (stride 17 words), and
 * B's 64×64-byte tile is read as 4×4-byte blocks (4 words of 4 consecutive n at rows
 * k..k+3 of one 32×16 weight block), transposed in registers (unpack4xI8 → pack4xI8) into [n][k-word] words of 4
 * consecutive k, the operand layout `dot4I8Packed` wants. Invocation (tx, ty) owns rows
 * ty + 16i and columns tx + 16j (i, j < 4), so shared-memory reads are conflict-free and the
 * output writes coalesce.
 */
export const dot4GemmWgsl = (kind: Int8GemmKind): string => {
  const m = mats(kind)
  const I4 = range(4)
  return /* wgsl */ `
${bindings(kind, 'vec4<u32>', 'u32')}
${siluWgsl}
const STRIDE = 17u;
var<workgroup> As: array<u32, ${DOT4_BM * 17}>;
${m.map((x) => `var<workgroup> Bs${x}: array<u32, ${DOT4_BN * 17}>;`).join('\n')}
var<workgroup> groupStart: u32;
var<workgroup> groupRows: u32;
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
${groupPrologue(DOT4_BM)}
  let n0 = wgCol * ${DOT4_BN}u;
  let kv = K / 16u; // vec4 words per A row
  let nw = N / 4u; // u32 words per B row
  let tx = lid % 16u;
  let ty = lid / 16u;
  // A loader: row lid/4, 4 words (16 bytes of k) at word 4·(lid%4)
  let aRow = min(start + m0 + lid / 4u, params.rowsAlloc - 1u);
  let aSrc = aRow * kv + lid % 4u;
  let aDst = (lid / 4u) * STRIDE + 4u * (lid % 4u);
  // B loader: 4×4-byte block at k rows 4·kb.., columns n = n0 + 4nb .. +3 (tiled layout:
  // word of (k, n) = e·K·N/4 + ((n/16)·(K/32) + k/32)·128 + (k%32)·4 + (n%16)/4)
  let kb = lid / 16u;
  let nb = lid % 16u;
  let bn4 = min(n0 + 4u * nb, N - 4u);
  let bSrc = e * K * nw + (bn4 / 16u) * (K / 32u) * 128u + (bn4 % 16u) / 4u;
${m.map((x) => I4.map((i) => I4.map((j) => `  var acc${x}${i}${j} = 0i;`).join('\n')).join('\n')).join('\n')}
  for (var k0 = 0u; k0 < K; k0 = k0 + 64u) {
    let av = A[aSrc + k0 / 16u];
${I4.map((c) => `    As[aDst + ${c}u] = av[${c}];`).join('\n')}
    let kr = k0 + 4u * kb;
${m
  .map(
    (x) => `    {
${I4.map((i) => `      let w${i} = unpack4xI8(B${x}[bSrc + (kr / 32u) * 128u + (kr % 32u + ${i}u) * 4u]);`).join('\n')}
${I4.map((j) => `      Bs${x}[(4u * nb + ${j}u) * STRIDE + kb] = pack4xI8(vec4<i32>(w0[${j}], w1[${j}], w2[${j}], w3[${j}]));`).join('\n')}
    }`,
  )
  .join('\n')}
    workgroupBarrier();
    for (var kq = 0u; kq < 16u; kq = kq + 1u) {
${I4.map((i) => `      let a${i} = As[(ty + ${16 * i}u) * STRIDE + kq];`).join('\n')}
${m.map((x) => I4.map((j) => `      let b${x}${j} = Bs${x}[(tx + ${16 * j}u) * STRIDE + kq];`).join('\n')).join('\n')}
${m.map((x) => I4.map((i) => I4.map((j) => `      acc${x}${i}${j} = acc${x}${i}${j} + dot4I8Packed(a${i}, b${x}${j});`).join('\n')).join('\n')).join('\n')}
    }
    workgroupBarrier();
  }
${I4.map(
  (i) => `  {
    let row = m0 + ty + ${16 * i}u;
    if (row < n) {
      let sr = sa[start + row];
${I4.map(
  (j) => `      {
        let col = n0 + tx + ${16 * j}u;
        if (col < N) {
${epilogue(kind, (x) => `acc${x}${i}${j}`, '          ')}
        }
      }`,
).join('\n')}
    }
  }`,
).join('\n')}
  }
}`
}

/**
 * Tile of the tensor-core kernel. A workgroup has sgM × sgN × sgK subgroups; subgroup
 * (im, in, ik) computes (fm·16) × (fn·16) outputs from fm × fn 16×16 i32 fragments (per
 * weight matrix: gate+up keeps gate and up fragments of the same outputs in the same
 * subgroup) over the ik-th of sgK equal slices of K (split-K: the slices are summed in
 * workgroup memory, exactly, in i32). BM = sgM·fm·16, BN = sgN·fn·16.
 */
export interface SgmTile {
  readonly sgM: number
  readonly sgN: number
  readonly fm: number
  readonly fn: number
  /** K slices per workgroup (split-K; default 1). K/sgK must be a multiple of 32 (the layer falls back to 1). */
  readonly sgK?: number
  /** K steps of 32 per loop iteration, loads of all steps issued before their MMAs (default 1). */
  readonly unroll?: number
  /**
   * Subgroup index: `builtin` (default) = `@builtin(subgroup_id)`; `local-index` = local
   * invocation index / subgroupSize (assumes subgroups are runs of consecutive invocations,
   * as on NVIDIA), with `diagnostic(off, chromium.subgroup_matrix_uniformity)` — a fallback
   * should a driver lack `subgroup_id`.
   */
  readonly subgroupId?: 'builtin' | 'local-index'
  /**
   * Operand path: `storage` (default) loads every fragment straight from the storage buffers;
   * `workgroup` stages each K step of BK = 32·unroll bytes — the A tile (BM × BK, rows padded
   * by 16 bytes) and the B tile of each weight matrix (BN/16 × BK/32 tiled 512-byte blocks) —
   * in workgroup memory with 16-byte loads, the next step's loads issued before this step's
   * MMAs, and loads the fragments from there (split-K is not used: `sgK` must be 1).
   */
  readonly stage?: 'storage' | 'workgroup'
  /** Staged tiles: bytes of padding after each A row in workgroup memory (a multiple of 16; default 16). */
  readonly aPad?: number
  /** Staged tiles: `false` loads the B fragments straight from storage and stages only A (default true). */
  readonly stageB?: boolean
  /**
   * Staged tiles: copies of the A and B tiles in workgroup memory (default 1). With 2 the next
   * K step is stored into the other copy after this step's MMAs, one barrier per step instead
   * of two (double buffering; twice the workgroup memory).
   */
  readonly stages?: 1 | 2
  /**
   * Order in which workgroups take output tiles: `columns-first` (default; x = column tile,
   * y = row tile) or `rows-first` (consecutive workgroups take the row tiles of one column
   * tile: each B column tile is read from memory about once per group instead of once per row
   * tile; matters when groups span several row tiles, i.e. prefill). On the H100 it made no
   * measurable difference (the staged 64×128 tile, Mixtral T 2048 / 4096: 8.34 / 16.1 ms of
   * GEMMs vs 8.36 / 15.9 columns first): L2 already serves the re-reads.
   */
  readonly raster?: 'columns-first' | 'rows-first'
}

/**
 * Storage-fed tensor-core tile (prefill): 2×2 subgroups of 2×4 fragments → 64×128 per workgroup
 * of 128 (the fastest of seven storage-fed prefill tiles on the H200: Mixtral T 4096 int8 GEMMs
 * 32.5 ms). The default plans run its staged twin first (twice as fast) and this where that
 * does not fit the device.
 */
export const DEFAULT_SGM_TILE: SgmTile = { sgM: 2, sgN: 2, fm: 2, fn: 4 }

/** Rows and columns per workgroup of a tensor-core tile. */
export const sgmTileDims = (t: SgmTile): { bm: number; bn: number } => ({ bm: t.sgM * t.fm * 16, bn: t.sgN * t.fn * 16 })

/** Subgroups per workgroup of a tile. */
export const sgmSubgroups = (t: SgmTile): number => t.sgM * t.sgN * (t.sgK ?? 1)

/**
 * Words of Ws, the tensor-core kernel's workgroup array: the epilogue's i32 slab, one 16×16
 * fragment per subgroup and weight matrix (sgM·sgN·sgK·mats·256 words); a staged tile's A and B
 * tiles (per stage) when larger, plus 4 words that hold its group bounds.
 */
export function sgmWorkgroupWords(kind: Int8GemmKind, t: SgmTile): number {
  // staged: the tiles or the slab, then 4 words (group bounds; keeps the size a multiple of 16 bytes)
  return t.stage === 'workgroup' ? sgmTileWords(kind, t) + 4 : sgmTileWords(kind, t)
}

/** Words of Ws the tiles and the epilogue slab use. */
function sgmTileWords(kind: Int8GemmKind, t: SgmTile): number {
  const slab = sgmSubgroups(t) * mats(kind).length * 256
  return t.stage === 'workgroup' ? Math.max(slab, (t.stages ?? 1) * stagedLayout(kind, t).words) : slab
}

/** Default bytes of padding after each staged A row. */
export const A_PAD = 16

/**
 * Workgroup-memory layout of a staged tile (words): A rows of BK + 16 bytes, then per weight
 * matrix the B tile as BN/16 column tiles of BK/32 contiguous 512-byte blocks.
 */
function stagedLayout(kind: Int8GemmKind, t: SgmTile): { bk: number; aRowBytes: number; aWords: number; bWords: number; words: number } {
  const { bm, bn } = sgmTileDims(t)
  const bk = 32 * (t.unroll ?? 1)
  const aRowBytes = bk + (t.aPad ?? A_PAD)
  const aWords = (bm * aRowBytes) / 4
  const bWords = t.stageB === false ? 0 : (bn * bk) / 4
  return { bk, aRowBytes, aWords, bWords, words: aWords + mats(kind).length * bWords }
}

/** Bytes of workgroup memory the kernel declares (the storage-fed kernel adds 12 for its group-bound scalars, as counted against the device limit). */
export const sgmWorkgroupBytes = (kind: Int8GemmKind, t: SgmTile): number => 4 * sgmWorkgroupWords(kind, t) + (t.stage === 'workgroup' ? 0 : 12)

/** Short cache-key fragment of a tile. */
export const sgmTileKey = (t: SgmTile): string =>
  `sg${t.sgM}x${t.sgN}x${t.sgK ?? 1}|f${t.fm}x${t.fn}|u${t.unroll ?? 1}|sgid=${t.subgroupId ?? 'builtin'}${t.stage === 'workgroup' ? `|staged|pad${t.aPad ?? A_PAD}|b${t.stageB === false ? 'storage' : 'staged'}|st${t.stages ?? 1}` : ''}${t.raster === 'rows-first' ? '|rows-first' : ''}`

const LEFT = 'subgroup_matrix_left<i8, 32, 16>' // <T, K (cols), M (rows)>
const RIGHT = 'subgroup_matrix_right<i8, 16, 32>' // <T, N (cols), K (rows)>
const RESULT = 'subgroup_matrix_result<i32, 16, 16>'

/**
 * Tensor-core int8 GEMM on `chromium_experimental_subgroup_matrix` (i8×i8→i32, M16 N16 K32).
 * Loads use the form measured exact on the H100 and H200 (Dawn 0.6.2): offsets and strides in
 * int8 ELEMENTS, `false` = row major. A (rows × K, row-major): left<i8, 32, 16> at stride K.
 * B in the TILED weight layout (see `weights-int8.ts`): each 32 (k) × 16 (n) block is 512
 * contiguous bytes, so a right<i8, 16, 32> fragment is one contiguous 512-byte load (stride
 * 16) — the row-major K×N layout made every fragment 32 rows of 16 bytes N apart, which
 * streamed about 0.5 TB/s on the H200. The subgroup index is `@builtin(subgroup_id)`
 * (subgroup-uniform, which `subgroupMatrixStore` requires of its offset). Rows
 * start+m0 .. +BM−1 may pass the last group: the caller allocates A with at least BM spare
 * rows (no clamping, which would shift valid rows); column tiles past N are clamped to the
 * last one (computed, never written). Epilogue per fragment position (i, j): every subgroup
 * stores its i32 fragment(s) into its 256-word slot of workgroup memory, barrier, the
 * workgroup's lanes sum the sgK slices of each output, dequantize (row < group size and
 * col < N guards) and write, barrier. `subgroupSize` fixes the workgroup size
 * (sgM·sgN·sgK·subgroupSize).
 */
export const sgmGemmWgsl = (kind: Int8GemmKind, tile: SgmTile, subgroupSize: number): string => {
  if (tile.stage === 'workgroup') return sgmStagedGemmWgsl(kind, tile, subgroupSize)
  const m = mats(kind)
  const { fm, fn } = tile
  const sgK = tile.sgK ?? 1
  const U = tile.unroll ?? 1
  const FI = range(fm)
  const FJ = range(fn)
  const UU = range(U)
  return /* wgsl */ `${sgmHeader(kind, tile, subgroupSize, 'i32', 'i32')}
  let kLen = K / ${sgK}u;
  let kBeg = ik * kLen;
  let aOff = (start + m0 + aRowL) * K;
  // B: tile (column tile ct, k tile kt) at byte e·K·N + (ct·(K/32) + kt)·512; last column tile clamps
  let kt32 = K / 32u;
  let ctLast = N / 16u - 1u;
${bColumnOffsets(fn)}
${accumulators(kind, tile)}
  for (var k = kBeg; k < kBeg + kLen; k = k + ${32 * U}u) {
${UU.map((u) => `${FI.map((i) => `    let a${i}_${u} = subgroupMatrixLoad<${LEFT}>(&A, aOff + ${i * 16}u * K + k + ${32 * u}u, false, K);`).join('\n')}
${m.map((x) => FJ.map((j) => bFromStorage(x, j, u)).join('\n')).join('\n')}`).join('\n')}
${mmas(kind, tile)}
  }
${sgmEpilogue(kind, tile, subgroupSize)}
  } // row tiles
}`
}

/** The MMAs of one K step (all unrolled sub-steps): c += a_u · b_u per fragment position. */
function mmas(kind: Int8GemmKind, tile: SgmTile): string {
  const U = range(tile.unroll ?? 1)
  return U.map((u) => mats(kind).map((x) => range(tile.fm).map((i) => range(tile.fn).map((j) => `    c${x}${i}${j} = subgroupMatrixMultiplyAccumulate(a${i}_${u}, b${x}${j}_${u}, c${x}${i}${j});`).join('\n')).join('\n')).join('\n')).join('\n')
}

/** Declarations of the subgroup's result fragments c<Mat><i><j>. */
const accumulators = (kind: Int8GemmKind, tile: SgmTile): string =>
  mats(kind).map((x) => range(tile.fm).map((i) => range(tile.fn).map((j) => `  var c${x}${i}${j}: ${RESULT};`).join('\n')).join('\n')).join('\n')

/**
 * Byte offsets bOff<j> of the subgroup's B column tiles in the tiled weights: tile (column tile
 * ct, k tile kt) at byte e·K·N + (ct·(K/32) + kt)·512; the last column tile clamps.
 */
const bColumnOffsets = (fn: number): string =>
  range(fn).map((j) => `  let bOff${j} = e * K * N + min((n0 + bColL) / 16u + ${j}u, ctLast) * kt32 * 512u;`).join('\n')

/** The B fragment of column tile j, unrolled sub-step u, straight from the storage buffer B<Mat>. */
const bFromStorage = (x: string, j: number, u: number): string => `    let b${x}${j}_${u} = subgroupMatrixLoad<${RIGHT}>(&B${x}, bOff${j} + (k / 32u + ${u}u) * 512u, false, 16u);`

/** Module head and the start of main shared by both tensor-core kernels (through the subgroup's sub-tile). */
function sgmHeader(kind: Int8GemmKind, tile: SgmTile, subgroupSize: number, aType: string, bType: string): string {
  const { sgM, sgN, fm, fn } = tile
  const { bm, bn } = sgmTileDims(tile)
  const SMN = sgM * sgN
  const wg = sgmSubgroups(tile) * subgroupSize
  const sgBuiltin = (tile.subgroupId ?? 'builtin') === 'builtin'
  const staged = tile.stage === 'workgroup'
  const words = sgmTileWords(kind, tile)
  return `enable subgroups;
enable chromium_experimental_subgroup_matrix;
${sgBuiltin ? '' : 'diagnostic(off, chromium.subgroup_matrix_uniformity);\n'}${bindings(kind, aType, bType)}
${siluWgsl}
${
  staged
    ? `// the only workgroup variable, so its base (and every 16-byte fragment offset in it) is aligned; group bounds in its last words
var<workgroup> Ws: array<i32, ${words + 4}>;`
    : `var<workgroup> Ws: array<i32, ${words}>;
var<workgroup> groupStart: u32;
var<workgroup> groupRows: u32;`
}
@compute @workgroup_size(${wg})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32, ${sgBuiltin ? '@builtin(subgroup_id) sg: u32, ' : ''}@builtin(subgroup_invocation_id) lane: u32, @builtin(subgroup_size) sgSize: u32) {
${sgBuiltin ? '' : `  let sg = lid / ${subgroupSize}u;\n`}${groupPrologue(bm, staged ? words : undefined, tile.raster === 'rows-first')}
  let n0 = wgCol * ${bn}u;
  // this subgroup: (im, in) sub-tile of the workgroup's tile, ik-th slice of K
  let smn = sg % ${SMN}u;
  let ik = sg / ${SMN}u;
  let aRowL = (smn / ${sgN}u) * ${fm * 16}u;
  let bColL = (smn % ${sgN}u) * ${fn * 16}u;`
}

/**
 * Epilogue of both tensor-core kernels, per fragment position (i, j): every subgroup stores
 * its i32 fragment(s) into its 256-word slot of Ws, barrier, the workgroup's lanes sum the sgK
 * slices of each output, dequantize (row and column guards) and write, barrier.
 */
function sgmEpilogue(kind: Int8GemmKind, tile: SgmTile, subgroupSize: number): string {
  const m = mats(kind)
  const nm = m.length
  const { sgM, sgN, fm, fn } = tile
  const sgK = tile.sgK ?? 1
  const SMN = sgM * sgN
  const wg = sgmSubgroups(tile) * subgroupSize
  // outputs of one fragment position across the workgroup's (im, in) subgroups
  const perRound = SMN * 256
  return `  let cs = sg * ${256 * nm}u;
${range(fm)
  .map((i) =>
    range(fn)
      .map(
        (j) => `  {
${m.map((x, mi) => `    subgroupMatrixStore(&Ws, cs + ${mi * 256}u, c${x}${i}${j}, false, 16u);`).join('\n')}
    workgroupBarrier();
    for (var t = lid; t < ${perRound}u; t = t + ${wg}u) {
      let q = t / 256u; // (im, in) sub-tile
      let f = t % 256u;
      let row = m0 + (q / ${sgN}u) * ${fm * 16}u + ${i * 16}u + f / 16u;
      let col = n0 + (q % ${sgN}u) * ${fn * 16}u + ${j * 16}u + f % 16u;
      if (row < n && col < N) {
${m.map((x, mi) => `        var acc${x} = 0i;\n        for (var kk = 0u; kk < ${sgK}u; kk = kk + 1u) { acc${x} = acc${x} + Ws[(kk * ${SMN}u + q) * ${256 * nm}u + ${mi * 256}u + f]; }`).join('\n')}
        let sr = sa[start + row];
${epilogue(kind, (x) => `acc${x}`, '        ')}
      }
    }
    workgroupBarrier();
  }`,
      )
      .join('\n'),
  )
  .join('\n')}`
}

/**
 * The staged tensor-core GEMM (`stage: 'workgroup'`): per K step of BK = 32·unroll bytes the
 * workgroup copies the A tile (BM rows × BK, from A as vec4<i32>, 16 bytes per load) and each
 * weight matrix's B tile (BN/16 column tiles × BK/32 contiguous 512-byte blocks of the tiled
 * layout) into Ws, then every subgroup loads its fragments from Ws — A at stride BK + 16
 * bytes, B blocks at stride 16 — and multiplies. The next step's global loads go to registers
 * before this step's MMAs (one stage in flight). Offsets and strides are in int8 elements,
 * all multiples of 4 (Tint lowers them to i32 words). The epilogue reuses Ws after a barrier.
 */
export const sgmStagedGemmWgsl = (kind: Int8GemmKind, tile: SgmTile, subgroupSize: number): string => {
  if ((tile.sgK ?? 1) !== 1) throw new RangeError('a staged tensor-core tile has no split-K (sgK must be 1)')
  const m = mats(kind)
  const U = tile.unroll ?? 1
  const { fm, fn } = tile
  const { bm, bn } = sgmTileDims(tile)
  const wg = sgmSubgroups(tile) * subgroupSize
  const { bk, aRowBytes, aWords, bWords, words: stageWords } = stagedLayout(kind, tile)
  const double = (tile.stages ?? 1) === 2
  const aRowW = aRowBytes / 4
  const aVecs = (bm * bk) / 16 // vec4 loads of the A tile
  const bVecs = (bn * bk) / 16 // per weight matrix
  const aPer = Math.ceil(aVecs / wg)
  const stageB = tile.stageB !== false
  const bPer = stageB ? Math.ceil(bVecs / wg) : 0
  if (((tile.aPad ?? A_PAD) % 16) !== 0) throw new RangeError('aPad must be a multiple of 16 bytes')
  const perRowA = bk / 16
  const perCt = bk // vec4s of one column tile's BK/32 blocks (32 per 512-byte block)
  const guard = (total: number, per: number, s: number) => (s === per - 1 && total % wg !== 0 ? `if (lid + ${s * wg}u < ${total}u) ` : '')
  const loads = (k: string) =>
    [
      ...range(aPer).map((s) => `    ${guard(aVecs, aPer, s)}{ ra${s} = A[aSrc${s} + ${k} / 16u]; }`),
      ...m.flatMap((x) => range(bPer).map((s) => `    ${guard(bVecs, bPer, s)}{ rb${x}${s} = B${x}[bSrc${s} + e * kn16 + (${k} / 32u) * 32u]; }`)),
    ].join('\n')
  // one staged vec4 into Ws words w .. w + 3
  const store4 = (w: string, r: string) => `{ let w = ${w}; Ws[w] = ${r}.x; Ws[w + 1u] = ${r}.y; Ws[w + 2u] = ${r}.z; Ws[w + 3u] = ${r}.w; }`
  // the registers into the stage at word `at` (an expression; '' = 0)
  const stores = (at: string, indent = '    ') =>
    [
      ...range(aPer).map((s) => `${indent}${guard(aVecs, aPer, s)}${store4(`${at}aDst${s}`, `ra${s}`)}`),
      ...m.flatMap((x, mi) => range(bPer).map((s) => `${indent}${guard(bVecs, bPer, s)}${store4(`${at}${aWords + mi * bWords}u + 4u * (lid + ${s * wg}u)`, `rb${x}${s}`)}`)),
    ].join('\n')
  // fragments of this step from the stage at word `at`, then the MMAs
  const compute = (at: string) => `${range(U)
    .map(
      (u) => `${range(fm).map((i) => `    let a${i}_${u} = subgroupMatrixLoad<${LEFT}>(&Ws, ${at ? `4u * ${at}` : ''}(aRowL + ${i * 16}u) * ${aRowBytes}u + ${32 * u}u, false, ${aRowBytes}u);`).join('\n')}
${m.map((x, mi) => range(fn).map((j) => (stageB ? `    let b${x}${j}_${u} = subgroupMatrixLoad<${RIGHT}>(&Ws, ${at ? `4u * ${at}` : ''}${4 * (aWords + mi * bWords)}u + ((bColL / 16u + ${j}u) * ${U}u + ${u}u) * 512u, false, 16u);` : bFromStorage(x, j, u))).join('\n')).join('\n')}`,
    )
    .join('\n')}
${mmas(kind, tile)}`
  // one stage: store, barrier, prefetch the next step, compute, barrier. Two stages: the next
  // step goes into the other copy after this step's MMAs, one barrier per step (which also
  // keeps the copy being overwritten from being read: its reads were the step before).
  const loop = double
    ? `${stores('')}
  for (var k = 0u; k < K; k = k + ${bk}u) {
    let cur = ((k / ${bk}u) % 2u) * ${stageWords}u;
    workgroupBarrier();
    let more = k + ${bk}u < K;
    if (more) {
${loads(`(k + ${bk}u)`)}
    }
${compute('cur + ')}
    if (more) {
${stores(`${stageWords}u - cur + `, '      ')}
    }
  }`
    : `  for (var k = 0u; k < K; k = k + ${bk}u) {
    workgroupBarrier();
${stores('')}
    workgroupBarrier();
    if (k + ${bk}u < K) {
${loads(`(k + ${bk}u)`)}
    }
${compute('')}
  }`
  return /* wgsl */ `${sgmHeader(kind, tile, subgroupSize, 'vec4<i32>', stageB ? 'vec4<i32>' : 'i32')}
  let kv = K / 16u; // vec4s per A row
  let kn16 = K * N / 16u; // vec4s per expert's weight matrix
  let kt32 = K / 32u;
  let ctLast = N / 16u - 1u;
${stageB ? '' : bColumnOffsets(fn)}
  // A tile loads: vec4 v = lid + s·wg is row v / ${perRowA}, 16-byte chunk v % ${perRowA}
${range(aPer).map((s) => `  let aSrc${s} = (start + m0 + (lid + ${s * wg}u) / ${perRowA}u) * kv + (lid + ${s * wg}u) % ${perRowA}u;\n  let aDst${s} = ((lid + ${s * wg}u) / ${perRowA}u) * ${aRowW}u + 4u * ((lid + ${s * wg}u) % ${perRowA}u);`).join('\n')}
  // B tile loads: vec4 v = lid + s·wg is column tile v / ${perCt} (clamped to the last), vec4 v % ${perCt} of its BK/32 blocks
${range(bPer).map((s) => `  let bSrc${s} = min(n0 / 16u + (lid + ${s * wg}u) / ${perCt}u, ctLast) * kt32 * 32u + (lid + ${s * wg}u) % ${perCt}u;`).join('\n')}
${range(aPer).map((s) => `  var ra${s} = vec4<i32>();`).join('\n')}
${m.flatMap((x) => range(bPer).map((s) => `  var rb${x}${s} = vec4<i32>();`)).join('\n')}
${accumulators(kind, tile)}
${loads('0u')}
${loop}
  workgroupBarrier();
${sgmEpilogue(kind, tile, subgroupSize)}
  } // row tiles
}`
}
