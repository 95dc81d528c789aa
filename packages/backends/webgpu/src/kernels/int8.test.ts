/**
 * The int8 W8A8 path. CPU: the quantization rule (round trip bound, exact half-even ties,
 * zero / tiny / non-finite rows), the WGSL generator of the tensor-core kernel (fragment
 * counts; compiled by Dawn's null backend, which validates WGSL but runs nothing). GPU
 * (lavapipe in CI): the quantizers give exactly the CPU's bytes and scales; the dot4 GEMMs
 * match the CPU W8A8 stages within 1e-5 of max |cpu| on identical int8 inputs; the whole
 * layer is within relative L2 1e-4 of the CPU W8A8 reference and within 3e-2 of the f32 one.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { contiguousPlacement, createMoe, exactSizeDispatcher, isMoeError, mulberry32, softmaxTopK, softmaxTopKRouter, type Dispatcher, type DispatchPlan, type Router, type LayerWeights, type ModelShape, type MoeConfig } from '@moe-route/core'
import { cpuBackend, expertsForward, gateMatmul, maxRelError, relativeL2 } from '@moe-route/backend-cpu'
import { randomHidden, randomLayerWeights } from '@moe-route/workloads'
import capacityDrop from '@moe-route/policy-capacity/capacity-drop'
import dynamicGating from '@moe-route/policy-dynamic-gating'
import { webgpuBackend } from '../plugin.js'
import { acquireDevice, dawnFlagsOf } from '../gpu/device.js'
import { GpuContext } from '../gpu/context.js'
import { WebGpuMoeLayer, withActiveList } from '../layer.js'
import { hostPlan, type PlanPolicy } from '../testing/plans.js'
import { INV127, int8GemmRef, quantizeLayerWeightsInt8, quantizeRowsInt8, w8a8ExpertsForward, type W8A8Trace } from '../int8.js'
import { checkInt8Shape, int8TileByte, quantizeDeviceWeights, tileInt8, uploadInt8Weights } from '../weights-int8.js'
import { generateLayerWeights, readExpertWeights, uploadLayerWeights } from '../weights.js'
import { webgpuAdapterForTests } from '../testing/gpu-env.js'
import { createWebGpuPipeline } from '../pipeline/device-pipeline.js'
import { DEFAULT_SGM_TILE, STAGED_SGM_TILE, STAGED_SMALL_SGM_TILE, fitSgmTile, int8GemmProgram, int8GemvLayout, int8GemvProgram, int8SpareRows, int8TileDims, quantizeRowsProgram, sgmSubgroups, sgmTileDims, type Int8GemmConfig, type Int8GemmKind, type Int8GemmParams, type SgmTile } from './expert-int8/int8.program.js'
import type { KernelProgram } from '../gpu/program.js'
import { emulateSubgroupMatrix } from '../testing/sgm-emulation.js'
import { sgmGemmWgsl, sgmWorkgroupBytes } from './expert-int8/int8-gemm.wgsl.js'

// WebGPU tests compile real shaders: on lavapipe with a cold Mesa shader cache (CI) a
// pipeline can take tens of seconds while the other test worker compiles too.
vi.setConfig({ testTimeout: 180_000 })

/** Largest over rows of max |gpu − cpu| / max |cpu| within the row (rows of very different magnitude). */
function rowRelErr(gpu: Float32Array, cpu: Float32Array, cols: number): number {
  let worst = 0
  for (let o = 0; o < cpu.length; o += cols) worst = Math.max(worst, maxRelError(gpu.subarray(o, o + cols), cpu.subarray(o, o + cols)))
  return gpu.length === cpu.length ? worst : Infinity
}

const expectCode = async (p: Promise<unknown> | (() => unknown), code: string) => {
  try {
    await (typeof p === 'function' ? p() : p)
  } catch (e) {
    expect(isMoeError(e) ? e.code : String(e)).toBe(code)
    return
  }
  throw new Error(`expected ${code}`)
}

describe('int8 quantization on the CPU', () => {
  it('round trip: |v − q·s| ≤ s/2, the max maps to ±127, scale = fl32(max·fl32(1/127))', () => {
    const rnd = mulberry32(7)
    const rows = 9
    const cols = 200
    const m = Float32Array.from({ length: rows * cols }, () => (rnd() - 0.5) * 4 * (1 + rnd() * 100))
    const { q, scale } = quantizeRowsInt8(m, rows, cols)
    for (let r = 0; r < rows; r++) {
      let mx = 0
      for (let c = 0; c < cols; c++) mx = Math.max(mx, Math.abs(m[r * cols + c]))
      expect(scale[r]).toBe(Math.fround(mx * INV127))
      let sawMax = false
      for (let c = 0; c < cols; c++) {
        const v = m[r * cols + c]
        const qq = q[r * cols + c]
        expect(Math.abs(qq)).toBeLessThanOrEqual(127)
        // exact real-number bound: |v − q·max/127| ≤ max/254
        expect(Math.abs(v - (qq * mx) / 127)).toBeLessThanOrEqual(mx / 254 + 1e-12 * mx)
        if (Math.abs(v) === mx) {
          expect(qq).toBe(v < 0 ? -127 : 127)
          sawMax = true
        }
      }
      expect(sawMax).toBe(true)
    }
  })

  it('ties round half to even; zero, tiny (< 2^-96) and non-finite rows quantize to zeros with scale 0', () => {
    const row = Float32Array.from([127, 2.5, -2.5, 3.5, 0.5, -0.5, 1.5, 126.5])
    const r = quantizeRowsInt8(row, 1, 8)
    expect(Array.from(r.q)).toEqual([127, 2, -2, 4, 0, 0, 2, 126])
    const special = Float32Array.from([0, 0, 1e-30, -1e-30, 1, NaN, 1, Infinity])
    const s = quantizeRowsInt8(special, 4, 2)
    expect(Array.from(s.q)).toEqual([0, 0, 0, 0, 0, 0, 0, 0])
    expect(Array.from(s.scale)).toEqual([0, 0, 0, 0])
  })

  it('W8A8 reference is within relative L2 3e-2 of the f32 experts (H 64, I 128)', () => {
    const shape: ModelShape = { experts: 4, topK: 2, hidden: 64, intermediate: 128, normalizeTopK: true }
    const w = randomLayerWeights(shape, { seed: 5, std: 0.05 })
    const T = 13
    const x = randomHidden(T, 64, 3)
    const routing = softmaxTopK({ tokens: T, experts: 4, logits: gateMatmul(x, w.router, T, 64, 4) }, 2, true)
    const plan = hostPlan(routing, {})
    const err = relativeL2(w8a8ExpertsForward(x, plan, w), expertsForward(x, plan, w))
    expect(err).toBeGreaterThan(1e-4) // it is quantized
    expect(err).toBeLessThan(3e-2)
    // pre-quantized weights give the same result
    expect(Array.from(w8a8ExpertsForward(x, plan, quantizeLayerWeightsInt8(w)))).toEqual(Array.from(w8a8ExpertsForward(x, plan, w)))
  })

  it('shapes: H or I not a multiple of 64 → SHAPE_MISMATCH naming the sizes', async () => {
    const device = { limits: { maxStorageBufferBindingSize: 2 ** 31, maxBufferSize: 2 ** 31 } } as unknown as GPUDevice
    expect(() => checkInt8Shape({ experts: 4, topK: 2, hidden: 96, intermediate: 128, normalizeTopK: true }, device)).toThrow(/multiples of 64 \(got H 96, I 128\)/)
    await expectCode(() => checkInt8Shape({ experts: 4, topK: 2, hidden: 64, intermediate: 80, normalizeTopK: true }, device), 'MOE_ROUTE_ERR_SHAPE_MISMATCH')
  })

  it('unsafeApis merges allow_unsafe_apis into the Dawn flags', () => {
    expect(dawnFlagsOf({})).toEqual([])
    expect(dawnFlagsOf({ unsafeApis: true })).toEqual(['enable-dawn-features=allow_unsafe_apis'])
    expect(dawnFlagsOf({ dawnFlags: ['backend=vulkan', 'enable-dawn-features=disable_robustness'], unsafeApis: true })).toEqual(['backend=vulkan', 'enable-dawn-features=disable_robustness,allow_unsafe_apis'])
    expect(dawnFlagsOf({ dawnFlags: ['enable-dawn-features=allow_unsafe_apis'], unsafeApis: true })).toEqual(['enable-dawn-features=allow_unsafe_apis'])
  })
})

const count = (s: string, what: string) => s.split(what).length - 1

describe('subgroup-matrix WGSL generator', () => {
  const tiles: SgmTile[] = [
    DEFAULT_SGM_TILE,
    { sgM: 2, sgN: 2, fm: 4, fn: 2 },
    { sgM: 1, sgN: 2, fm: 1, fn: 2, sgK: 4, unroll: 2 },
    { sgM: 1, sgN: 4, fm: 2, fn: 2, sgK: 2 },
    { sgM: 2, sgN: 2, fm: 2, fn: 2, subgroupId: 'local-index' },
  ]

  const stagedTiles: SgmTile[] = [
    { sgM: 2, sgN: 2, fm: 2, fn: 4, unroll: 2, stage: 'workgroup' },
    { sgM: 4, sgN: 2, fm: 2, fn: 2, unroll: 4, stage: 'workgroup' },
    { sgM: 2, sgN: 1, fm: 1, fn: 1, stage: 'workgroup', subgroupId: 'local-index' },
    { sgM: 2, sgN: 2, fm: 2, fn: 4, unroll: 2, stage: 'workgroup', stageB: false, aPad: 0 },
    { sgM: 2, sgN: 2, fm: 2, fn: 4, unroll: 2, stage: 'workgroup', stages: 2, raster: 'rows-first' },
    { sgM: 1, sgN: 2, fm: 1, fn: 1, stage: 'workgroup', stages: 2 },
  ]
  it.each(stagedTiles.filter((t) => t.stageB !== false && t.aPad === undefined && t.stages === undefined))('staged tile (workgroup memory): fragments from Ws, 16-byte global loads, layout sizes: %o', (tile) => {
    for (const kind of ['gateup', 'down'] as const) {
      const mats = kind === 'gateup' ? 2 : 1
      const U = tile.unroll ?? 1
      const src = sgmGemmWgsl(kind, tile, 32)
      const { bm, bn } = sgmTileDims(tile)
      const bk = 32 * U
      expect(count(src, 'subgroupMatrixMultiplyAccumulate(')).toBe(tile.fm * tile.fn * mats * U)
      // every fragment from workgroup memory: A rows padded to BK + 16 bytes, B blocks of 512 bytes at stride 16
      expect(count(src, `subgroupMatrixLoad<subgroup_matrix_left<i8, 32, 16>>(&Ws, `)).toBe(tile.fm * U)
      expect(count(src, `false, ${bk + 16}u);`)).toBe(tile.fm * U)
      expect(count(src, `subgroupMatrixLoad<subgroup_matrix_right<i8, 16, 32>>(&Ws, `)).toBe(tile.fn * mats * U)
      expect(src).toContain('var<storage, read> A: array<vec4<i32>>;')
      const words = Math.max(sgmSubgroups(tile) * mats * 256, (bm * (bk + 16)) / 4 + (mats * bn * bk) / 4)
      // Ws is the only workgroup variable (its base 16-byte aligned); the group bounds sit in its last 4 words
      expect(src).toContain(`var<workgroup> Ws: array<i32, ${words + 4}>;`)
      expect(count(src, 'var<workgroup>')).toBe(1)
      expect(src).toContain(`workgroupUniformLoad(&Ws[${words + 1}])`)
      expect(sgmWorkgroupBytes(kind, tile)).toBe(4 * (words + 4))
      expect(src).not.toContain('kLen')
    }
    expect(() => sgmGemmWgsl('down', { ...tile, sgK: 2 }, 32)).toThrow(/split-K/)
    expect(fitSgmTile({ ...tile, sgK: 4 }, 4096).sgK).toBe(1)
    expect(int8GemmProgram('down', { variant: 'subgroup-matrix', gateup: tile, down: tile, subgroupSize: 32 }).cacheKey).toContain('staged')
  })

  it('two stages: twice the tile words, the next step stored into the other copy, one barrier per K step; rows-first raster', () => {
    const tile: SgmTile = { sgM: 2, sgN: 2, fm: 2, fn: 4, unroll: 2, stage: 'workgroup' }
    for (const kind of ['gateup', 'down'] as const) {
      const mats = kind === 'gateup' ? 2 : 1
      const { bm, bn } = sgmTileDims(tile)
      const stage = (bm * (64 + 16)) / 4 + (mats * bn * 64) / 4
      const one = sgmGemmWgsl(kind, tile, 32)
      const two = sgmGemmWgsl(kind, { ...tile, stages: 2, raster: 'rows-first' }, 32)
      const words = Math.max(sgmSubgroups(tile) * mats * 256, 2 * stage)
      expect(two).toContain(`var<workgroup> Ws: array<i32, ${words + 4}>;`)
      expect(sgmWorkgroupBytes(kind, { ...tile, stages: 2 })).toBe(4 * (words + 4))
      expect(two).toContain(`let cur = ((k / 64u) % 2u) * ${stage}u;`)
      // the K loop (up to the epilogue): two barriers per step with one stage, one with two
      const loopOf = (src: string) => src.slice(src.indexOf('for (var k = 0u;'), src.indexOf('let cs = sg'))
      expect(count(loopOf(one), 'workgroupBarrier();')).toBe(3)
      expect(count(loopOf(two), 'workgroupBarrier();')).toBe(2)
      // every fragment from the current copy, every store into the other
      expect(count(two, '(&Ws, 4u * cur + ')).toBe((tile.fm + tile.fn * mats) * 2)
      expect(count(two, `let w = ${stage}u - cur + `)).toBe(count(one, 'let w = ') / 1)
      // rows first: consecutive workgroups walk the row tiles of one column tile
      expect(two).toContain('let wgCol = wgLinear / nwg.y;\n  let wgRow = wgLinear % nwg.y;')
      expect(one).toContain('let wgCol = wid.x;')
    }
    const key = (t: SgmTile) => int8GemmProgram('down', { variant: 'subgroup-matrix', gateup: t, down: t, subgroupSize: 32 }).cacheKey
    expect(new Set([tile, { ...tile, stages: 2 as const }, { ...tile, raster: 'rows-first' as const }].map(key)).size).toBe(3)
  })

  it.each(tiles)('fragment counts and workgroup size: %o', (tile) => {
    for (const kind of ['gateup', 'down'] as const) {
      const mats = kind === 'gateup' ? 2 : 1
      const U = tile.unroll ?? 1
      const src = sgmGemmWgsl(kind, tile, 32)
      const frags = tile.fm * tile.fn * mats
      const { bm, bn } = sgmTileDims(tile)
      expect(count(src, 'subgroupMatrixMultiplyAccumulate(')).toBe(frags * U)
      expect(count(src, 'subgroupMatrixStore(')).toBe(frags)
      expect(count(src, `subgroupMatrixLoad<subgroup_matrix_left<i8, 32, 16>>`)).toBe(tile.fm * U)
      expect(count(src, `subgroupMatrixLoad<subgroup_matrix_right<i8, 16, 32>>`)).toBe(tile.fn * mats * U)
      // right fragments are contiguous 512-byte blocks of the tiled weights
      expect(count(src, '* 512u, false, 16u);')).toBe(tile.fn * mats * U)
      expect(count(src, ': subgroup_matrix_result<i32, 16, 16>;')).toBe(frags)
      expect(src).toContain(`@workgroup_size(${sgmSubgroups(tile) * 32})`)
      expect(src).toContain('enable chromium_experimental_subgroup_matrix;')
      expect(src).toContain(`var<workgroup> Ws: array<i32, ${sgmSubgroups(tile) * mats * 256}>;`)
      expect(sgmWorkgroupBytes(kind, tile)).toBe(4 * sgmSubgroups(tile) * mats * 256 + 12)
      expect(src).toContain(`let kLen = K / ${tile.sgK ?? 1}u;`)
      expect(src).toContain('let wgCol = wid.x;\n  let wgRow = wid.y;')
      expect(src).toContain(`for (var m0 = wgRow * ${bm}u; m0 < n; m0 = m0 + nwg.y * ${bm}u) {`)
      expect(src).toContain(`let n0 = wgCol * ${bn}u;`)
    }
    const keys = new Set(tiles.map((t) => int8GemmProgram('down', { variant: 'subgroup-matrix', gateup: t, down: t, subgroupSize: 32 }).cacheKey))
    expect(keys.size).toBe(tiles.length)
  })

  it('split-K and unrolling are fitted to K (whole 32-deep steps per slice)', () => {
    expect(fitSgmTile({ sgM: 1, sgN: 2, fm: 1, fn: 2, sgK: 8, unroll: 2 }, 14336)).toMatchObject({ sgK: 8, unroll: 2 }) // 448 steps
    expect(fitSgmTile({ sgM: 1, sgN: 2, fm: 1, fn: 2, sgK: 8, unroll: 2 }, 64)).toMatchObject({ sgK: 2, unroll: 1 })
    expect(fitSgmTile({ sgM: 1, sgN: 2, fm: 1, fn: 2, sgK: 4, unroll: 2 }, 96)).toMatchObject({ sgK: 1, unroll: 1 }) // 3 steps
    expect(fitSgmTile(DEFAULT_SGM_TILE, 128)).toMatchObject({ sgK: 1, unroll: 1 })
  })

  it('tiled weight layout: each 32×16 block is 512 contiguous bytes, blocks by column tile then k tile', () => {
    const K = 64
    const N = 32
    const seen = new Set<number>()
    for (let k = 0; k < K; k++) for (let n = 0; n < N; n++) seen.add(int8TileByte(k, n, K))
    expect(seen.size).toBe(K * N)
    expect(Math.max(...seen)).toBe(K * N - 1)
    expect(int8TileByte(0, 0, K)).toBe(0)
    expect(int8TileByte(0, 1, K)).toBe(1)
    expect(int8TileByte(1, 0, K)).toBe(16)
    expect(int8TileByte(32, 0, K)).toBe(512) // next k tile of the same columns
    expect(int8TileByte(0, 16, K)).toBe(1024) // next column tile after K/32 = 2 blocks
    const m = { q: Int8Array.from({ length: N * K }, (_, i) => (i % 251) - 125), scale: new Float32Array(N) }
    const t = tileInt8(m, N, K)
    for (const [k, n] of [[0, 0], [5, 17], [63, 31], [33, 2]]) expect(t[int8TileByte(k, n, K)]).toBe(m.q[n * K + k])
  })

  it('tile plans: the first plan whose maxRows covers the group, the last one past them all; split-K fitted per K', async () => {
    let acquired
    try {
      acquired = await acquireDevice({ dawnFlags: ['backend=null'], unsafeApis: true, timestamps: false })
    } catch {
      console.warn('[int8] no Dawn null backend here: skipping the tile-plan check')
      return
    }
    // the null device reports no fixed subgroup size: present one, as an NVIDIA adapter does
    const ctx = new GpuContext({ ...acquired, features: { ...acquired.features, subgroups: true, subgroupSize: 32, subgroupMatrix: true } })
    const small = { sgM: 1, sgN: 1, fm: 1, fn: 4, sgK: 4 } // 16 KiB of workgroup memory on the null device
    const big = { sgM: 1, sgN: 2, fm: 1, fn: 2 }
    const l = new WebGpuMoeLayer(ctx, { int8Tiles: [{ maxRows: 4, gateup: small, down: small }, { maxRows: 16, gateup: big, down: big }] })
    // the subgroup-matrix config a layer picks for a typical group of `rows` at Mixtral's shape
    const sgmAt = (layer: WebGpuMoeLayer, rows: number) => layer.int8Gemm(rows, 4096, 14336) as Extract<Int8GemmConfig, { variant: 'subgroup-matrix' }>
    const at = (rows: number) => sgmAt(l, rows)
    expect(at(4).gateup).toMatchObject({ fn: 4, sgK: 4 })
    expect(at(5).gateup).toMatchObject({ fn: 2, sgN: 2 })
    expect(at(1000).gateup).toMatchObject({ fn: 2, sgN: 2 }) // past every plan: the last
    expect(at(1000)).toBe(at(16)) // cached per plan and shape
    // staged plans run (exact on the H100 since Ws is the kernel's only workgroup variable); two stages double the
    // workgroup memory, checked against the device; a bad stage count or raster is refused
    const staged = { sgM: 1, sgN: 1, fm: 1, fn: 1, stage: 'workgroup' as const }
    const stagedLayer = (t: SgmTile) => new WebGpuMoeLayer(ctx, { int8Tiles: [{ maxRows: Infinity, gateup: t, down: t }] })
    expect(stagedLayer(staged).int8Gemm(64, 4096, 14336)).toMatchObject({ gateup: { stage: 'workgroup' } })
    expect(stagedLayer({ ...staged, stages: 2, raster: 'rows-first' }).int8Gemm(64, 4096, 14336)).toMatchObject({ gateup: { stages: 2, raster: 'rows-first' } })
    const wide = { sgM: 2, sgN: 2, fm: 2, fn: 4, unroll: 2, stage: 'workgroup' as const } // 21.6 KB of gate+up tiles per stage
    const limit = acquired.device.limits.maxComputeWorkgroupStorageSize
    for (const stages of [1, 2] as const) {
      const bytes = sgmWorkgroupBytes('gateup', { ...wide, stages })
      if (bytes <= limit) expect(stagedLayer({ ...wide, stages }).int8Gemm(64, 4096, 14336)).toMatchObject({ gateup: { stages } })
      else expect(() => stagedLayer({ ...wide, stages }).int8Gemm(64, 4096, 14336)).toThrow(/does not fit this device/)
    }
    expect(() => stagedLayer({ ...staged, stages: 3 as 2 }).int8Gemm(64, 4096, 14336)).toThrow(/not a valid tile.*stages 1 or 2/)
    expect(() => stagedLayer({ ...staged, raster: 'diagonal' as 'rows-first' }).int8Gemm(64, 4096, 14336)).toThrow(/raster/)
    expect(l.int8Gemm(1, 64, 64)).toMatchObject({ gateup: { sgK: 2 }, down: { sgK: 2 } }) // K 64: 2 steps
    // default plans: the staged tiles where the device has the workgroup memory (an H100's 48 KiB),
    // down their fallback chains where it has less (the null device's 16 KiB)
    // (a stand-in device: choosing tiles reads only its limits)
    const withWgMemory = (bytes: number) => {
      const limits = { maxComputeWorkgroupStorageSize: bytes, maxComputeInvocationsPerWorkgroup: 1024, maxComputeWorkgroupSizeX: 1024 }
      return new GpuContext({ ...acquired, device: { limits, onuncapturederror: null } as unknown as GPUDevice, features: { ...acquired.features, subgroups: true, subgroupSize: 32, subgroupMatrix: true } })
    }
    const big48 = new WebGpuMoeLayer(withWgMemory(49152))
    expect(sgmAt(big48, 8)).toMatchObject({ gateup: STAGED_SMALL_SGM_TILE, down: STAGED_SMALL_SGM_TILE })
    expect(sgmAt(big48, 16).gateup).toEqual(fitSgmTile(STAGED_SMALL_SGM_TILE, 4096))
    expect(sgmAt(big48, 17)).toMatchObject({ gateup: STAGED_SGM_TILE, down: STAGED_SGM_TILE })
    const mid32 = new WebGpuMoeLayer(withWgMemory(32768)) // two stages (35 KB) do not fit: one stage
    expect(sgmAt(mid32, 8).gateup).toEqual(fitSgmTile({ ...STAGED_SMALL_SGM_TILE, stages: 1 }, 4096))
    expect(sgmAt(mid32, 64).gateup).toEqual(fitSgmTile(STAGED_SGM_TILE, 4096))
    const small16 = new WebGpuMoeLayer(withWgMemory(16384)) // WebGPU's default limit: the storage-fed tiles that fit
    expect(sgmAt(small16, 8).gateup).toEqual({ sgM: 1, sgN: 1, fm: 1, fn: 4, sgK: 4, unroll: 1 })
    expect(sgmAt(small16, 64).gateup).toEqual(fitSgmTile(DEFAULT_SGM_TILE, 4096))
    for (const [t, kind] of [[sgmAt(small16, 8).gateup, 'gateup'], [sgmAt(small16, 64).down, 'down']] as const) expect(sgmWorkgroupBytes(kind, t)).toBeLessThanOrEqual(16384)
    // a user plan without a fallback that does not fit is refused, naming the tile and the limit
    const tiny8 = new WebGpuMoeLayer(withWgMemory(8192), { int8Tiles: [{ maxRows: Infinity, gateup: STAGED_SGM_TILE, down: STAGED_SGM_TILE }] })
    expect(() => tiny8.int8Gemm(64, 4096, 14336)).toThrow(/does not fit this device .*8192 bytes of workgroup memory/)
    expect(() => new WebGpuMoeLayer(withWgMemory(4096)).int8Gemm(64, 4096, 14336)).toThrow(/nor does any fallback/)
    acquired.device.destroy()
  })

  // Dawn's null backend exposes every feature and runs Tint's front end (parse, types,
  // uniformity) and pipeline validation, though it executes nothing.
  it('compiles on Dawn (null backend, allow_unsafe_apis)', async () => {
    let acquired
    try {
      acquired = await acquireDevice({ dawnFlags: ['backend=null'], unsafeApis: true, timestamps: false })
    } catch {
      console.warn('[int8] no Dawn null backend here: skipping the subgroup-matrix compile check')
      return
    }
    const device = acquired.device
    try {
      expect(acquired.features.subgroupMatrix).toBe(true)
      const maxSg = Number(acquired.adapterInfo.subgroupMaxSize ?? 128)
      for (const tile of [...tiles, ...stagedTiles]) {
        for (const kind of ['gateup', 'down'] as const) {
          const code = sgmGemmWgsl(kind, tile, 32)
          device.pushErrorScope('validation')
          const module = device.createShaderModule({ code })
          const info = await module.getCompilationInfo()
          const errors = info.messages.filter((m) => m.type === 'error').map((m) => `${m.lineNum}:${m.linePos} ${m.message}`)
          expect(errors, `${kind} ${JSON.stringify(tile)}`).toEqual([])
          // the null device's max subgroup size is 128 and its workgroup memory 16 KiB: pipelines only for tiles within those
          const fits = (sgmSubgroups(tile) * 32) % maxSg === 0 && sgmWorkgroupBytes(kind, tile) <= device.limits.maxComputeWorkgroupStorageSize
          if (fits) device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } })
          const err = await device.popErrorScope()
          expect(err?.message, `${kind} ${JSON.stringify(tile)}`).toBeUndefined()
        }
      }
    } finally {
      device.destroy()
    }
  })
})

const adapter = await webgpuAdapterForTests()

describe.skipIf(!adapter)(`int8 W8A8 kernels vs the CPU reference (${adapter})`, () => {
  let ctx: GpuContext
  let layer: WebGpuMoeLayer
  let gemvLayer: WebGpuMoeLayer
  const shape: ModelShape = { experts: 4, topK: 2, hidden: 64, intermediate: 128, normalizeTopK: true }
  const { hidden: H, intermediate: I, experts: E, topK: k } = shape
  const weights = randomLayerWeights(shape, { seed: 21, std: 0.05 })
  const T = 13

  beforeAll(async () => {
    ctx = new GpuContext(await acquireDevice(), { profile: true })
    layer = new WebGpuMoeLayer(ctx)
    gemvLayer = new WebGpuMoeLayer(ctx, { int8GemvMaxRows: 32 })
  })
  afterAll(() => {
    ctx?.dispose()
    ctx?.device.destroy()
  })

  /** Hidden states with the quantizer's corner cases: a zero row, exact ties, tiny, denormal and huge (1e15, or up to 3e38 for the quantizer alone) values. */
  function hiddenWithCorners(huge = 1e15): Float32Array {
    const x = randomHidden(T, H, 17)
    x.fill(0, 0, H) // token 0: zero row
    for (let c = 0; c < H; c++) x[H + c] = c === 0 ? 127 : (c % 2 ? -1 : 1) * ((c % 120) + 0.5) // ties against max 127
    for (let c = 0; c < H; c++) x[2 * H + c] = 1e-30 * (c + 1) // max < 2^-96: zero row
    x[3 * H + 5] = 1e-40 // denormal in a normal row
    for (let c = 0; c < H; c++) x[4 * H + c] = huge * Math.sin(c + 1)
    return x
  }

  /** A plan with expert 3 empty (its logits are −1e4). */
  function planFor(x: Float32Array, policy: PlanPolicy, tokens = T): DispatchPlan {
    const logits = gateMatmul(x, weights.router, tokens, H, E)
    for (let t = 0; t < tokens; t++) logits[t * E + 3] = -1e4
    const routing = softmaxTopK({ tokens, experts: E, logits }, k, true)
    return hostPlan(routing, policy)
  }

  async function readAll(bufs: { buf: GPUBuffer; bytes: number }[], rec = ctx.recorder('int8-test read')) {
    for (const b of bufs) rec.read(b.buf, b.bytes)
    return (await rec.submit()).reads
  }

  it('weights: device quantization (f32 and f16 sources) equals the host bytes and scales', async () => {
    for (const dtype of ['f32', 'f16'] as const) {
      const dw = await generateLayerWeights(ctx, shape, { seed: 4, dtype, std: 0.05 })
      const w8 = await quantizeDeviceWeights(ctx, dw)
      const host = await readExpertWeights(ctx, dw, 2)
      const [gq, gs, dq, ds] = await readAll([
        { buf: w8.gateQ, bytes: E * I * H },
        { buf: w8.gateScale, bytes: E * I * 4 },
        { buf: w8.downQ, bytes: E * I * H },
        { buf: w8.downScale, bytes: E * H * 4 },
      ])
      const g = quantizeRowsInt8(host.gate, I, H)
      const d = quantizeRowsInt8(host.down, H, I)
      expect(Array.from(new Int8Array(gq, 2 * I * H, I * H))).toEqual(Array.from(tileInt8(g, I, H)))
      expect(Array.from(new Float32Array(gs, 2 * I * 4, I))).toEqual(Array.from(g.scale))
      expect(Array.from(new Int8Array(dq, 2 * I * H, I * H))).toEqual(Array.from(tileInt8(d, H, I)))
      expect(Array.from(new Float32Array(ds, 2 * H * 4, H))).toEqual(Array.from(d.scale))
      w8.destroy()
      dw.destroy()
    }
  })

  it('x quantizer: bit-exact on corner rows (values up to 3e38), padding and spare rows zero', async () => {
    const x = hiddenWithCorners(3e38)
    const plan = planFor(x, { mode: 'static', capacityFactor: 1.25 })
    const R = plan.offsets[E]
    const Ra = R + 64
    const xb = layer.uploadHidden(x, T, H)
    const rowToken = ctx.upload(plan.rowToken, 'rowToken', 16)
    const offsets = ctx.upload(withActiveList(plan.offsets, E), 'offsets')
    const xq = ctx.storage(Ra * H, 'xq')
    const sx = ctx.storage(Ra * 4, 'sx')
    ctx.device.queue.writeBuffer(xq, 0, new Uint8Array(Ra * H).fill(0x7f))
    const rec = ctx.recorder('int8-quantize')
    rec.run(quantizeRowsProgram(true), { tokens: T, kdim: H, rowsAlloc: Ra, experts: E }, [xb, rowToken, offsets, xq, sx])
    const [gq, gs] = await readAll([{ buf: xq, bytes: Ra * H }, { buf: sx, bytes: Ra * 4 }], rec)
    const xs = new Float32Array(R * H)
    for (let r = 0; r < R; r++) if (plan.rowToken[r] >= 0) xs.set(x.subarray(plan.rowToken[r] * H, (plan.rowToken[r] + 1) * H), r * H)
    const cpu = quantizeRowsInt8(xs, R, H)
    expect(plan.rowToken.includes(-1)).toBe(true)
    expect(Array.from(new Int8Array(gq, 0, R * H))).toEqual(Array.from(cpu.q))
    expect(Array.from(new Float32Array(gs, 0, R))).toEqual(Array.from(cpu.scale))
    expect(new Int8Array(gq, R * H).every((v) => v === 0)).toBe(true)
    ctx.pool.release(xb, rowToken, offsets, xq, sx)
  })

  /**
   * The four int8 stages run as the layer runs them (programs from `gemm`), checked stage by
   * stage: quantizers bit-exact, each GEMM within 1e-5 (per row, of max |cpu|) of the CPU on
   * the same int8 operands.
   */
  async function checkStages(policy: PlanPolicy, cfg: Int8GemmConfig, gemm: (kind: Int8GemmKind) => KernelProgram<Int8GemmParams & { slots: number }>, tokens = T, gridRows?: number): Promise<void> {
    const x = tokens === T ? hiddenWithCorners() : randomHidden(tokens, H, tokens)
    const plan = planFor(x, policy, tokens)
    expect(plan.offsets[4] - plan.offsets[3]).toBe(policy.mode === 'static' ? plan.capacity : 0)
    const R = plan.offsets[E]
    const Ra = R + int8SpareRows(cfg)
    const w8 = uploadInt8Weights(ctx, weights)
    const qw = quantizeLayerWeightsInt8(weights)
    const xb = layer.uploadHidden(x, tokens, H)
    const rowToken = ctx.upload(plan.rowToken, 'rowToken', 16)
    const offsets = ctx.upload(withActiveList(plan.offsets, E), 'offsets')
    const xq = ctx.storage(Ra * H, 'xq')
    const sx = ctx.storage(Ra * 4, 'sx')
    const act = ctx.storage(R * I * 4, 'act')
    const aq = ctx.storage(Ra * I, 'aq')
    const sa = ctx.storage(Ra * 4, 'sa')
    const y = ctx.storage(R * H * 4, 'y')
    let maxRows = 0
    for (let e = 0; e < E; e++) maxRows = Math.max(maxRows, plan.offsets[e + 1] - plan.offsets[e])
    // gridRows: a grid of fewer row tiles than the largest group (its workgroups loop over the rest)
    if (gridRows !== undefined) {
      expect(maxRows).toBeGreaterThan(int8TileDims(cfg).bm * Math.ceil(gridRows / int8TileDims(cfg).bm))
      maxRows = gridRows
    }
    // garbage in the pooled buffers must not matter
    ctx.device.queue.writeBuffer(xq, 0, new Uint8Array(Ra * H).fill(0x7f))
    ctx.device.queue.writeBuffer(aq, 0, new Uint8Array(Ra * I).fill(0x81))
    const rec = ctx.recorder('int8-stages')
    rec.releaseAfterSubmit(xb, rowToken, offsets, xq, sx, act, aq, sa, y)
    rec.run(quantizeRowsProgram(true), { tokens, kdim: H, rowsAlloc: Ra, experts: E }, [xb, rowToken, offsets, xq, sx])
    rec.run(gemm('gateup'), { kdim: H, ndim: I, experts: E, rowsAlloc: Ra, maxRows, slots: E }, [xq, sx, offsets, w8.gateQ, w8.upQ, w8.gateScale, w8.upScale, act])
    rec.run(quantizeRowsProgram(false), { tokens, kdim: I, rowsAlloc: Ra, experts: E }, [act, offsets, aq, sa])
    rec.run(gemm('down'), { kdim: I, ndim: H, experts: E, rowsAlloc: Ra, maxRows, slots: E }, [aq, sa, offsets, w8.downQ, w8.downScale, y])
    const [gxq, gsx, gact, gaq, gsa, gy] = await readAll(
      [
        { buf: xq, bytes: Ra * H },
        { buf: sx, bytes: Ra * 4 },
        { buf: act, bytes: R * I * 4 },
        { buf: aq, bytes: Ra * I },
        { buf: sa, bytes: Ra * 4 },
        { buf: y, bytes: R * H * 4 },
      ],
      rec,
    )
    w8.destroy()
    const trace: { out?: W8A8Trace } = {}
    w8a8ExpertsForward(x, plan, qw, trace)
    const cpu = trace.out!
    // x quantizer: identical bytes and scales, spare rows zero
    expect(Array.from(new Int8Array(gxq, 0, R * H))).toEqual(Array.from(cpu.xq.q))
    expect(Array.from(new Float32Array(gsx, 0, R))).toEqual(Array.from(cpu.xq.scale))
    expect(new Int8Array(gxq, R * H).every((v) => v === 0)).toBe(true)
    expect(new Float32Array(gsx, R * 4).every((v) => v === 0)).toBe(true)
    // gate+up on identical int8 operands
    const gpuAct = new Float32Array(gact)
    expect(rowRelErr(gpuAct, cpu.act, I)).toBeLessThanOrEqual(1e-5)
    // act quantizer: identical to the CPU rule applied to the GPU's act
    const actq = quantizeRowsInt8(gpuAct, R, I)
    expect(Array.from(new Int8Array(gaq, 0, R * I))).toEqual(Array.from(actq.q))
    expect(Array.from(new Float32Array(gsa, 0, R))).toEqual(Array.from(actq.scale))
    expect(new Int8Array(gaq, R * I).every((v) => v === 0)).toBe(true)
    // down on identical int8 operands
    const yRef = new Float32Array(R * H)
    for (let e = 0; e < E; e++) {
      const s = plan.offsets[e]
      const n = plan.offsets[e + 1] - s
      if (n > 0) yRef.set(int8GemmRef({ q: actq.q.subarray(s * I, (s + n) * I), scale: actq.scale.subarray(s, s + n) }, n, qw.experts[e].down, H, I), s * H)
    }
    expect(rowRelErr(new Float32Array(gy), yRef, H)).toBeLessThanOrEqual(1e-5)
  }

  it.each([
    ['dynamic, expert 3 empty', {}],
    ['static γ=1.25 (padding rows)', { mode: 'static', capacityFactor: 1.25 }],
  ] as [string, PlanPolicy][])('stages (dot4): quantizers bit-exact, GEMMs within 1e-5 of the CPU on the same int8 operands: %s', async (_n, policy) => {
    const cfg = { variant: 'dot4' } as const
    await checkStages(policy, cfg, (kind) => int8GemmProgram(kind, cfg))
    // groups of ~35 rows: a second 64-row tile only for the largest group with T 120
    await checkStages(policy, cfg, (kind) => int8GemmProgram(kind, cfg), 120)
    // groups of ~75 rows on a grid of one row tile: every workgroup loops over its group's tiles
    await checkStages(policy, cfg, (kind) => int8GemmProgram(kind, cfg), 300, 1)
  })

  // The decode kernels (dot4 over the tiled panels, integer subgroup sums): same i32 sums as
  // the GEMMs. Layouts: one block per group (mt 8), and blocks of 1 and 2 rows looping over
  // groups of ~30 rows (T 60); K 64 / 128 leaves invocations past K (the chunk guard).
  it.each([
    [4, T, {}, false],
    [1, 60, { mode: 'static', capacityFactor: 1.25 }, false],
    [2, 60, {}, false],
  ] as [number, number, PlanPolicy, boolean][])('stages (int8 GEMV, rows per block %i): quantizers bit-exact, GEMVs within 1e-5 of the CPU, T %i, policy %o', async (mt, tokens, policy) => {
    if (!ctx.features.subgroups) return // the GEMV needs subgroups; the layer uses the GEMMs without
    const sg = ctx.features.subgroupSize!
    const cfg = { variant: 'dot4' } as const
    const gemv = (kind: Int8GemmKind) => {
      const l = int8GemvLayout(kind, kind === 'gateup' ? H : I, mt, sg, 1024, ctx.device.limits.maxComputeWorkgroupStorageSize)
      expect(l.mt).toBe(mt)
      return int8GemvProgram(l) as unknown as KernelProgram<Int8GemmParams & { slots: number }>
    }
    await checkStages(policy, cfg, gemv, tokens)
  })

  it('int8 GEMV layout: ≤ 64 stationary words per invocation, rows per block capped by registers and workgroup memory', () => {
    const mix = int8GemvLayout('gateup', 4096, 1, 32, 1024, 49152)
    expect([mix.wg, mix.mt, mix.kc]).toEqual([512, 1, 1024])
    expect(int8GemvLayout('down', 14336, 8, 32, 1024, 49152)).toMatchObject({ wg: 1024, mt: 4 }) // 4 chunks: 64 + 16·4 words
    expect(int8GemvLayout('gateup', 4096, 8, 32, 1024, 49152).mt).toBe(2) // 2·16·2 weights + 2·16·mt accumulators
    expect(int8GemvLayout('down', 2048, 8, 8, 1024, 16384).mt).toBeLessThan(8) // 128 subgroups of 8: partials cap mt
  })

  // The tensor-core kernel's WGSL with its subgroup-matrix builtins emulated in plain WGSL
  // (src/testing/sgm-emulation.ts): checks its tiling, staging and epilogue indexing here;
  // the builtins themselves run only on the H100.
  // (BN 128 > N 64 for down exercises the column guard; T 60 with BM 16/32 gives several row tiles per group)
  const sgmTiles: [SgmTile, number, PlanPolicy, number?][] = [
    [DEFAULT_SGM_TILE, T, { mode: 'static', capacityFactor: 1.25 }],
    // decode tile: one 16-row fragment, split-K 2 (K 64 = 2 steps), several row tiles per group
    [{ sgM: 1, sgN: 2, fm: 1, fn: 2, sgK: 4, unroll: 2 }, 60, {}],
    [{ sgM: 2, sgN: 1, fm: 1, fn: 2, sgK: 2, subgroupId: 'local-index' }, 60, { mode: 'static', capacityFactor: 1.25 }],
    // unrolled K loop (2 steps per iteration) without split; BN 32 < N 128 for gate+up
    [{ sgM: 1, sgN: 1, fm: 1, fn: 2, unroll: 2 }, T, {}],
    // BN 128 > N 64 for down (clamped column tiles), several row tiles taken rows first
    [{ sgM: 2, sgN: 2, fm: 2, fn: 4, raster: 'rows-first' }, 60, {}],
    // a grid of one row tile: the workgroups loop over the groups' further 16-row tiles
    [{ sgM: 1, sgN: 2, fm: 1, fn: 2, sgK: 4, unroll: 2 }, 60, {}, 1],
    // staged through workgroup memory: BK 32 (gate+up K 64: two steps, down K 128: four; the prefetch path),
    // BN 128 > N 64 for down (clamped column tiles whose B loads still land in Ws), several row tiles looped over by a grid of one
    [{ sgM: 1, sgN: 4, fm: 1, fn: 2, stage: 'workgroup' }, 60, {}, 1],
    // staged, BK 32, one fragment per subgroup (B loads not a multiple of the workgroup: guarded), static padding rows,
    // subgroup index from the local index
    [{ sgM: 2, sgN: 1, fm: 1, fn: 1, stage: 'workgroup', subgroupId: 'local-index' }, T, { mode: 'static', capacityFactor: 1.25 }],
    // staged with two stages (gate+up 2 K steps, down 4: each copy written and read twice), row tiles taken rows first
    [{ sgM: 1, sgN: 2, fm: 1, fn: 1, stage: 'workgroup', stages: 2, raster: 'rows-first' }, 60, {}],
    // the default plan's small-group tile (two stages, BK 64: gate+up one K step, down two) at half its width
    // (the full tile's 35 KB of workgroup memory exceed lavapipe's 32 KB)
    [{ ...STAGED_SMALL_SGM_TILE, sgN: 2 }, T, {}],
  ]
  it.each(sgmTiles)('stages (subgroup-matrix kernel, builtins emulated): tile %o, T %i, policy %o, grid rows %s', async (tile, tokens, policy, gridRows?: number) => {
    const sgSize = ctx.features.subgroupSize ?? 8
    const cfg: Int8GemmConfig = { variant: 'subgroup-matrix', gateup: fitSgmTile(tile, H), down: fitSgmTile(tile, I), subgroupSize: sgSize }
    const emulated = (kind: Int8GemmKind): KernelProgram<Int8GemmParams> => {
      const p = int8GemmProgram(kind, cfg)
      return { ...p, name: `${p.name}-emulated`, cacheKey: `${p.cacheKey}|emulated`, getShaderSource: () => emulateSubgroupMatrix(p.getShaderSource(), sgSize) }
    }
    await checkStages(policy, cfg, emulated, tokens, gridRows)
    // lavapipe compiles each emulated kernel cold for up to a minute on a loaded 2-core machine
  }, 600_000)

  it.each([
    ['dynamic, expert 3 empty', {}],
    ['static γ=1.25 (padding rows)', { mode: 'static', capacityFactor: 1.25 }],
    ['capacity drop γ=1.0', { capacityFactor: 1.0 }],
  ] as [string, PlanPolicy][])('layer.experts(int8) vs CPU W8A8 (rel L2 ≤ 1e-4) and f32 (rel L2 ≤ 3e-2): %s', async (_n, policy) => {
    const x = randomHidden(T, H, 29)
    const plan = planFor(x, policy)
    const gpu = await layer.experts(x, plan, weights, 'int8')
    expect(gpu.expertKernel).toBe('int8')
    // groups of ~7 rows: the GEMMs by default; int8GemvMaxRows 32 runs the GEMV kernels (with subgroups), with the same sums
    expect(Object.keys(gpu.kernels ?? {})).toEqual(expect.arrayContaining(['experts-int8-quantize-x', 'experts-int8-dot4-gate-up', 'experts-int8-quantize-act', 'experts-int8-dot4-down', 'combine']))
    const viaGemv = await gemvLayer.experts(x, plan, weights, 'int8')
    if (ctx.features.subgroups) expect(Object.keys(viaGemv.kernels ?? {})).toEqual(expect.arrayContaining(['experts-int8-gemv-gate-up', 'experts-int8-gemv-down']))
    expect(relativeL2(viaGemv.output, gpu.output)).toBeLessThanOrEqual(1e-6)
    const w8a8 = w8a8ExpertsForward(x, plan, weights)
    const f32 = expertsForward(x, plan, weights)
    const errQ = relativeL2(gpu.output, w8a8)
    const errF = relativeL2(gpu.output, f32)
    console.log(`[int8] experts ${_n}: rel L2 vs W8A8 ${errQ.toExponential(2)}, vs f32 ${errF.toExponential(2)}, max rel vs W8A8 ${maxRelError(gpu.output, w8a8).toExponential(2)}`)
    expect(errQ).toBeLessThanOrEqual(1e-4)
    expect(errF).toBeLessThanOrEqual(3e-2)
  })

  it.each([
    ['dynamic', { policies: [] }],
    ['static γ=1.0', { policies: [], dispatcher: { use: 'dynamic-gating', options: { mode: 'static', capacityFactor: 1.0, capacityRule: 'expert-share' } } }],
    ['capacity γ=1.5', { policies: [{ use: 'capacity-drop', options: { capacityFactor: 1.5 } }] }],
    ['dynamic, indirect grid', { policies: [] }, true],
    ['capacity γ=1.5, indirect grid', { policies: [{ use: 'capacity-drop', options: { capacityFactor: 1.5 } }] }, true],
  ] as [string, Partial<MoeConfig>, boolean?][])('device pipeline with expertKernel int8 (direct or indirect GEMM grid) vs the CPU engine: %s', async (_n, extra, indirectGemmGrid) => {
    const x = randomHidden(T, H, 31)
    const config = (backend: object) => ({ model: weights.shape, backend, ...extra })
    const plugins = [capacityDrop, dynamicGating, cpuBackend, webgpuBackend]
    const gpuEngine = createMoe({ config: config({ use: 'webgpu', options: { expertKernel: 'int8', ...(indirectGemmGrid ? { indirectGemmGrid } : {}) } }), plugins, weights })
    const cpuEngine = createMoe({ config: config({ use: 'cpu' }), plugins, weights })
    const gpu = await gpuEngine.forward({ id: 0, tokens: T, hidden: x })
    const cpu = await cpuEngine.forward({ id: 0, tokens: T, hidden: x })
    await gpuEngine.dispose()
    expect(Array.from(gpu.routing.expertIds)).toEqual(Array.from(cpu.routing.expertIds))
    expect(Array.from(gpu.plan.counts)).toEqual(Array.from(cpu.plan.counts))
    const errQ = relativeL2(gpu.output!, w8a8ExpertsForward(x, cpu.plan, weights))
    const errF = relativeL2(gpu.output!, cpu.output!)
    console.log(`[int8] pipeline ${_n}: rel L2 vs W8A8 ${errQ.toExponential(2)}, vs f32 ${errF.toExponential(2)}`)
    expect(errQ).toBeLessThanOrEqual(1e-4)
    expect(errF).toBeLessThanOrEqual(3e-2)
  })

  // OLMoE's routing at decode sizes (E 64, k 8, T 32; H and I scaled down): groups of up to 11
  // rows against GEMV blocks of 2 and 4 rows, and an expert empty, so the non-empty expert list
  // is shorter than the 64 workgroup rows the decode kernels launch, and a live expert's own
  // slot lies past it. The pooled offsets buffer holds stale words (a buffer of the same size
  // class, e.g. another batch's row indices): every slot past the list must read −1, or a
  // workgroup runs on a garbage expert id and overwrites rows. Before the offsets kernel wrote
  // −1 there, this read rel L2 6.7e-2 (int8 and f32 alike; 5.7e-2 at the full OLMoE shape, T 32,
  // on an H100: the int8 GEMV vs dot4 discrepancy of bench/int8-sweep.bench.ts).
  it('device pipeline at OLMoE routing (E 64, k 8, T 32) on stale pooled buffers: int8 GEMV vs CPU W8A8 (rel L2 ≤ 1e-4), f32 decode vs CPU f32', async () => {
    const model: ModelShape = { experts: 64, topK: 8, hidden: 256, intermediate: 128, normalizeTopK: false }
    const E64 = model.experts
    const T32 = 32
    const w = randomLayerWeights(model, { seed: 1, std: 0.02 })
    const x = randomHidden(T32, model.hidden, 33)
    const pctx = { model, devices: 1, seed: 1, placement: contiguousPlacement(E64, 1) }
    const spec = {
      model,
      placement: pctx.placement,
      seed: 1,
      router: softmaxTopKRouter.create({ normalizeTopK: null }, pctx) as Router,
      policies: [],
      dispatcher: exactSizeDispatcher.create({}, pctx) as Dispatcher,
      weights: { kind: 'host', weights: w } as const,
      activationBytes: 2,
    }
    /** Pooled buffers of the offsets buffer's size class, every word E+2 (an index into the list itself: a stale slot names "expert" E+2, whose bounds are list entries). */
    const staleOffsets = () => {
      const bufs = Array.from({ length: 16 }, () => ctx.storage((3 * E64 + 1) * 4, 'stale'))
      for (const b of bufs) ctx.device.queue.writeBuffer(b, 0, new Int32Array(b.size / 4).fill(E64 + 2))
      ctx.pool.release(...bufs)
    }
    const runs: [string, WebGpuMoeLayer, 'int8' | 'gemv', (plan: DispatchPlan) => Float32Array, number][] = [
      ['int8 GEMV', new WebGpuMoeLayer(ctx, { int8Kernel: 'dot4', int8GemvMaxRows: Infinity }), 'int8', (plan) => w8a8ExpertsForward(x, plan, w), 1e-4],
      ['f32 decode', new WebGpuMoeLayer(ctx, { weightsDtype: 'f32', multiRowPlans: 'off' }), 'gemv', (plan) => expertsForward(x, plan, w), 1e-5],
    ]
    for (const [name, l, expertKernel, reference, tol] of runs) {
      const dw = expertKernel === 'int8' ? uploadInt8Weights(ctx, w) : uploadLayerWeights(ctx, w, 'f32')
      const pipeline = await createWebGpuPipeline(l, dw, spec, { expertKernel })
      staleOffsets()
      const r = await pipeline.forward({ id: 0, tokens: T32, hidden: x })
      await pipeline.dispose()
      dw.destroy()
      const plan = r.detail!.plan
      const sizes = Array.from({ length: E64 }, (_, e) => plan.offsets[e + 1] - plan.offsets[e])
      const active = sizes.filter((n) => n > 0).length
      // the case: a live expert whose own list slot lies past the list, groups larger than the GEMV's row blocks
      expect(sizes.some((n, e) => n > 0 && e >= active)).toBe(true)
      if (expertKernel === 'int8' && ctx.features.subgroups) {
        expect(Object.keys(r.kernels ?? {})).toEqual(expect.arrayContaining(['experts|experts-int8-gemv-gate-up', 'experts|experts-int8-gemv-down']))
        const rowsHint = Math.ceil((T32 * model.topK) / E64)
        for (const [kind, K] of [['gateup', model.hidden], ['down', model.intermediate]] as const) {
          expect(Math.max(...sizes)).toBeGreaterThan(int8GemvLayout(kind, K, rowsHint, ctx.features.subgroupSize!, 1024, ctx.device.limits.maxComputeWorkgroupStorageSize).mt)
        }
      }
      const err = relativeL2(r.output!, reference(plan))
      console.log(`[int8] OLMoE routing, stale pool, ${name}: ${active} of ${E64} experts active, groups up to ${Math.max(...sizes)} rows, rel L2 vs CPU ${err.toExponential(2)}`)
      expect(err, name).toBeLessThanOrEqual(tol)
    }
  })

  it('DeviceInt8Weights run with auto; dot4 is auto on a device without subgroup matrices; int8 uploads are cached', async () => {
    const x = randomHidden(T, H, 37)
    const plan = planFor(x, {})
    const w8 = uploadInt8Weights(ctx, weights)
    const a = await layer.experts(x, plan, w8)
    expect(a.expertKernel).toBe('int8')
    const b = await layer.experts(x, plan, weights, 'int8')
    expect(Array.from(a.output)).toEqual(Array.from(b.output))
    expect(layer.int8Weights(weights)).toBe(layer.int8Weights(weights))
    if (!ctx.features.subgroupMatrix) expect(layer.int8Gemm().variant).toBe('dot4')
    const viaDot4 = new WebGpuMoeLayer(ctx, { int8Kernel: 'dot4', expertKernel: 'int8' })
    expect(Array.from((await viaDot4.experts(x, plan, weights)).output)).toEqual(Array.from(b.output))
    w8.destroy()
  })

  it('errors: shapes not multiple of 64, f32 device weights with int8, int8 weights with gemm, subgroup-matrix without the feature', async () => {
    const bad: LayerWeights = randomLayerWeights({ experts: 4, topK: 2, hidden: 96, intermediate: 128, normalizeTopK: true }, { seed: 1 })
    const badX = randomHidden(3, 96, 1)
    const badPlan = hostPlan(softmaxTopK({ tokens: 3, experts: 4, logits: gateMatmul(badX, bad.router, 3, 96, 4) }, 2, true), {})
    await expectCode(layer.experts(badX, badPlan, bad, 'int8'), 'MOE_ROUTE_ERR_SHAPE_MISMATCH')
    expect(() => uploadInt8Weights(ctx, bad)).toThrow(/got H 96, I 128/)
    const dw = uploadLayerWeights(ctx, weights, 'f32')
    const x3 = randomHidden(3, H, 1)
    const plan3 = planFor(x3, {}, 3)
    await expectCode(layer.experts(x3, plan3, dw, 'int8'), 'MOE_ROUTE_ERR_INPUT_INVALID')
    const w8 = uploadInt8Weights(ctx, weights)
    await expectCode(layer.experts(x3, plan3, w8, 'gemm'), 'MOE_ROUTE_ERR_INPUT_INVALID')
    if (!ctx.features.subgroupMatrix) {
      const l = new WebGpuMoeLayer(ctx, { int8Kernel: 'subgroup-matrix' })
      await expectCode(l.experts(x3, plan3, w8), 'MOE_ROUTE_ERR_BACKEND_UNAVAILABLE')
    }
    dw.destroy()
    w8.destroy()
  })
})
