/**
 * The gate kernels against the CPU reference (`gateMatmul`), tolerance as in kernels.test.ts:
 * max |gpu − cpu| ≤ 1e-4 · max |cpu|. Focus: the tiled kernel's edges (T not a multiple of the
 * tile's tokens, E not a multiple of its experts, H not a multiple of its K chunk, grids of
 * many workgroups) and which kernel a batch gets.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { gateMatmul } from '@moe-route/backend-cpu'
import { randomHidden } from '@moe-route/workloads'
import { acquireDevice } from '../../gpu/device.js'
import { GpuContext } from '../../gpu/context.js'
import type { KernelProgram } from '../../gpu/program.js'
import { WebGpuMoeLayer } from '../../layer.js'
import { webgpuAdapterForTests } from '../../testing/gpu-env.js'
import { teamFor } from '../common/team.wgsl.js'
import { gateTileDims, gateTileProblem, gateTiledWgsl, type GateTile } from './gate-tiled.wgsl.js'
import { DEFAULT_GATE_TILES, GATE_SPLIT_MAX_OUTPUTS, GATE_TILED_MIN_OUTPUTS, GATE_TILED_MIN_OUTPUTS_WIDE, gateProgramFor, gateTileFor, gateTiledProgram, type GateParams } from './gate.program.js'

// each tile is its own pipeline: on lavapipe with a cold shader cache a compile takes seconds
vi.setConfig({ testTimeout: 120_000 })

const adapter = await webgpuAdapterForTests()

function expectClose(gpu: Float32Array, cpu: Float32Array, what: string): void {
  expect(gpu.length, what).toBe(cpu.length)
  let err = 0
  let scale = 1e-30
  for (let i = 0; i < cpu.length; i++) {
    err = Math.max(err, Number.isFinite(gpu[i]) ? Math.abs(gpu[i] - cpu[i]) : Infinity)
    scale = Math.max(scale, Math.abs(cpu[i]))
  }
  expect(err, `${what}: max abs err ${err} vs scale ${scale}`).toBeLessThanOrEqual(1e-4 * scale)
}

describe('tiled gate plans (no device)', () => {
  it('keeps the team kernels at decode and small batches, tiles from T·E ≥ GATE_TILED_MIN_OUTPUTS (E ≤ 32) / _WIDE (E > 32)', () => {
    for (const E of [8, 16, 60, 64, 128, 256]) {
      for (const T of [1, 8, 32]) expect(gateTileFor(T, E), `T ${T} E ${E}`).toBeNull()
      const first = Math.ceil((E <= 32 ? GATE_TILED_MIN_OUTPUTS : GATE_TILED_MIN_OUTPUTS_WIDE) / E)
      expect(gateTileFor(first - 1, E), `E ${E}`).toBeNull()
      const tile = gateTileFor(first, E)
      expect(tile, `E ${E}`).not.toBeNull()
      // the expert tile covers E, or is 64 wide
      expect(tile!.be >= Math.min(E, 64)).toBe(true)
    }
    expect(gateTileFor(2048, 8)?.be).toBe(8)
    expect(gateTileFor(2048, 64)).toEqual({ bt: 16, be: 64, tm: 2, tn: 4, ks: 2, bk4: 8 })
    expect(gateTileFor(1024, 64)).toBeNull() // the team kernels were faster there on the H100
    expect(gateTileFor(4096, 64, [])).toBeNull()
    const team = teamFor({ subgroups: false, subgroupSize: null }, 8)
    expect(gateProgramFor(team, 4096, 64).cacheKey).toMatch(/^gate\|tiled\|/)
    expect(gateProgramFor(team, 4096, 64, 'off').cacheKey).toBe('gate|team=32x8wg|teams')
    expect(gateProgramFor(team, 32, 64).cacheKey).toBe('gate|team=32x8wg|split')
    expect(32 * 64).toBeLessThanOrEqual(GATE_SPLIT_MAX_OUTPUTS)
  })

  it('default tiles fit every WebGPU device (256 invocations, 16 KiB)', () => {
    for (const { tile } of DEFAULT_GATE_TILES) {
      expect(gateTileProblem(tile)).toBeNull()
      expect(gateTileDims(tile).wg).toBe(256)
      expect(gateTileDims(tile).bytes).toBeLessThanOrEqual(16384)
    }
  })

  it('refuses malformed and oversized tiles with a reason', () => {
    const ok: GateTile = { bt: 16, be: 64, tm: 2, tn: 4, ks: 2, bk4: 8 }
    expect(gateTileProblem({ ...ok, tm: 3 })).toMatch(/bt 16 is not a multiple of tm 3/)
    expect(gateTileProblem({ ...ok, tn: 0 })).toMatch(/tn must be an integer/)
    expect(gateTileProblem({ ...ok, ks: 3 })).toMatch(/bk4 8 is not a multiple of ks 3/)
    expect(gateTileProblem({ ...ok, ks: 4 })).toMatch(/512 invocations/)
    expect(gateTileProblem({ ...ok, bt: 64, tm: 8, ks: 1, bk4: 16 })).toMatch(/workgroup memory/)
    expect(gateTileProblem({ ...ok, bt: 64, tm: 8, ks: 1, bk4: 16 }, { maxWgBytes: 65536 })).toBeNull()
    const team = teamFor({ subgroups: false, subgroupSize: null }, 8)
    const bad = [{ maxExperts: Infinity, minOutputs: 1, tile: { ...ok, ks: 4 } }]
    expect(() => gateProgramFor(team, 100, 64, bad)).toThrow(expect.objectContaining({ code: 'MOE_ROUTE_ERR_INPUT_INVALID' }))
  })

  it('generates one kernel per tile, reduction only with split K', () => {
    expect(gateTiledWgsl({ bt: 32, be: 64, tm: 2, tn: 4, ks: 1, bk4: 8 })).not.toMatch(/split-K/)
    expect(gateTiledWgsl({ bt: 16, be: 64, tm: 2, tn: 4, ks: 2, bk4: 8 })).toMatch(/split-K/)
    expect(gateTiledProgram({ bt: 16, be: 8, tm: 2, tn: 2, ks: 8, bk4: 32 }).getRunData({ tokens: 700, experts: 8, hidden: 4096 }).dispatch).toEqual([44, 1, 1])
    expect(gateTiledProgram({ bt: 32, be: 64, tm: 2, tn: 4, ks: 1, bk4: 8 }).getRunData({ tokens: 700, experts: 200, hidden: 4096 }).dispatch).toEqual([88, 1, 1])
  })
})

describe.skipIf(!adapter)(`gate kernels vs CPU reference (${adapter})`, () => {
  let ctx: GpuContext

  beforeAll(async () => {
    ctx = new GpuContext(await acquireDevice())
  })
  afterAll(() => {
    ctx?.dispose()
    ctx?.device.destroy()
  })

  /** Runs `program` on fresh x (T rows, no padding row) and router; logits start as NaN so an unwritten output fails. */
  async function run(program: KernelProgram<GateParams>, T: number, E: number, H: number, seed: number): Promise<{ gpu: Float32Array; cpu: Float32Array }> {
    const x = randomHidden(T, H, seed)
    const router = randomHidden(E, H, seed + 1, 0.05)
    const xb = ctx.upload(x, 'test x')
    const rb = ctx.upload(router, 'test router')
    const out = ctx.upload(new Float32Array(T * E).fill(NaN), 'test logits')
    const rec = ctx.recorder('gate test')
    rec.run(program, { tokens: T, experts: E, hidden: H }, [xb, rb, out])
    rec.read(out, T * E * 4)
    rec.releaseAfterSubmit(xb, rb, out)
    const { reads } = await rec.submit()
    return { gpu: new Float32Array(reads[0]), cpu: gateMatmul(x, router, T, H, E) }
  }

  // T 700: not a multiple of any bt, 44–88 token tiles; E 60 / 12 / 20 / 5: not multiples of be;
  // H 200 (50 vec4): not a multiple of any K chunk (8, 16, 32 vec4), so the last chunk is partial
  const cases: { name: string; tile: GateTile; E: number; H: number }[] = [
    { name: 'default E ≤ 8 tile, split K 8', tile: DEFAULT_GATE_TILES[0].tile, E: 5, H: 200 },
    { name: 'default E ≤ 16 tile, split K 4', tile: DEFAULT_GATE_TILES[1].tile, E: 12, H: 200 },
    { name: 'default E ≤ 32 tile, split K 2', tile: DEFAULT_GATE_TILES[2].tile, E: 20, H: 64 },
    { name: 'default E > 32 tile, split K 2', tile: DEFAULT_GATE_TILES[3].tile, E: 60, H: 200 },
    { name: 'a 32×64 tile (no split K), two expert tiles', tile: { bt: 32, be: 64, tm: 2, tn: 4, ks: 1, bk4: 8 }, E: 100, H: 200 },
    { name: 'odd tile: tm·tn not a multiple of 4, staging loads guarded', tile: { bt: 12, be: 24, tm: 3, tn: 3, ks: 2, bk4: 4 }, E: 60, H: 64 },
  ]
  for (const c of cases) {
    it(`${c.name}: T 700, E ${c.E}, H ${c.H} (${JSON.stringify(c.tile)})`, async () => {
      const { gpu, cpu } = await run(gateTiledProgram(c.tile), 700, c.E, c.H, 21)
      expectClose(gpu, cpu, c.name)
    })
  }

  it('a grid over 32768 workgroups (spread over y; the surplus workgroups exit)', async () => {
    const tile: GateTile = { bt: 1, be: 2, tm: 1, tn: 1, ks: 1, bk4: 1 }
    const program = gateTiledProgram(tile)
    expect(program.getRunData({ tokens: 33000, experts: 3, hidden: 8 }).dispatch).toEqual([32768, 3, 1])
    const { gpu, cpu } = await run(program, 33000, 3, 8, 7)
    expectClose(gpu, cpu, 'T 33000 E 3')
  })

  it('a single token and a single expert (tile mostly clamped rows)', async () => {
    const { gpu, cpu } = await run(gateTiledProgram(DEFAULT_GATE_TILES[3].tile), 1, 1, 16, 5)
    expectClose(gpu, cpu, 'T 1 E 1')
  })

  it('the layer picks the tiled kernel at T·E ≥ 98304 (E > 32) and matches the CPU (E 60, T 1700 and 700 and 31)', async () => {
    const layer = new WebGpuMoeLayer(ctx)
    expect(layer.gateKernel(1700, 60).cacheKey).toMatch(/tiled/)
    expect(layer.gateKernel(700, 60).cacheKey).not.toMatch(/tiled/)
    expect(layer.gateKernel(31, 60).cacheKey).not.toMatch(/tiled/)
    expect(new WebGpuMoeLayer(ctx, { gateTiles: 'off' }).gateKernel(1700, 60).cacheKey).not.toMatch(/tiled/)
    const E = 60
    const H = 64
    const router = randomHidden(E, H, 9, 0.05)
    const weights = { shape: { experts: E, topK: 2, hidden: H, intermediate: 16, normalizeTopK: true }, router, experts: Array.from({ length: E }, () => ({ gate: new Float32Array(16 * H), up: new Float32Array(16 * H), down: new Float32Array(16 * H) })) }
    for (const T of [1700, 700, 31]) {
      const x = randomHidden(T, H, T)
      expectClose((await layer.gate(x, T, weights)).logits, gateMatmul(x, router, T, H, E), `layer T ${T}`)
    }
  })
})
