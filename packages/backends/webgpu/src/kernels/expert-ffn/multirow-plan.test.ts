/** The multi-row plan table lookup and its fit to device limits (no GPU needed). */
import { describe, expect, it } from 'vitest'
import { DEFAULT_MULTIROW_PLANS, H200_MULTIROW_PLANS, MULTIROW_PLANS_BY_GPU, multiRowPlanFor, multiRowPlansForGpu } from './expert-ffn.program.js'
import { multiRowSharedVec4, multiRowWgsl, multiRowWorkgroup } from './expert-multirow.wgsl.js'

const roomy = { maxWg: 1024, maxWgBytes: 32768 }

describe('multi-row decode plans', () => {
  it('picks the first plan whose maxRows covers the typical group (per kernel: rows with minK need that K); null past the table', () => {
    expect(multiRowPlanFor(1, DEFAULT_MULTIROW_PLANS, roomy)?.gateup).toEqual({ mt: 2, nr: 8, ks: 16, cpt: 4, fm: true })
    expect(multiRowPlanFor(2, DEFAULT_MULTIROW_PLANS, roomy)?.gateup.mt).toBe(8)
    expect(multiRowPlanFor(3, DEFAULT_MULTIROW_PLANS, roomy)?.gateup.mt).toBe(16)
    // Mixtral-like K: gate+up K = 4096 and down K = 14336 reach minK 4096; OLMoE-like (2048, 1024) do not
    const long = multiRowPlanFor(8, DEFAULT_MULTIROW_PLANS, roomy, { gateup: 4096, down: 14336 })!
    expect(long.down).toEqual({ mt: 16, nr: 32, ks: 8, cpt: 1, wr: 4, fm: true })
    const short = multiRowPlanFor(8, DEFAULT_MULTIROW_PLANS, roomy, { gateup: 2048, down: 1024 })!
    expect(short.down).toEqual({ mt: 16, nr: 32, ks: 8, cpt: 2, wr: 2, fm: true })
    expect(multiRowPlanFor(8, DEFAULT_MULTIROW_PLANS, roomy)).toEqual(short)
    // per kernel: a long gate+up and a short down
    const mixed = multiRowPlanFor(32, DEFAULT_MULTIROW_PLANS, roomy, { gateup: 4096, down: 1024 })!
    expect(mixed.gateup).toEqual({ mt: 32, nr: 64, ks: 4, cpt: 2, wr: 2, fm: true })
    expect(mixed.down).toEqual({ mt: 32, nr: 64, ks: 4, cpt: 2, wr: 4, fm: true })
    // past 32 rows the 32-row layouts (blocks of 32 rows) cover every size
    expect(multiRowPlanFor(33, DEFAULT_MULTIROW_PLANS, roomy)?.gateup).toEqual(multiRowPlanFor(32, DEFAULT_MULTIROW_PLANS, roomy)?.gateup)
    expect(multiRowPlanFor(100_000, DEFAULT_MULTIROW_PLANS, roomy, { gateup: 4096, down: 14336 })?.down).toEqual({ mt: 32, nr: 64, ks: 8, cpt: 2, wr: 4, fm: true })
    expect(multiRowPlanFor(33, H200_MULTIROW_PLANS, roomy)).toBeNull()
    // the H200's table keeps the single-row kernels for one row per group
    expect(multiRowPlanFor(1, H200_MULTIROW_PLANS, roomy)).toBeNull()
    expect(multiRowPlanFor(2, H200_MULTIROW_PLANS, roomy)?.gateup.mt).toBe(4)
  })

  it('per GPU model: a measured table by the adapter device string, else the default; tables ordered by maxRows, each minK row before a general row of its maxRows', () => {
    for (const [gpu, plans] of Object.entries(MULTIROW_PLANS_BY_GPU)) {
      expect(multiRowPlansForGpu(gpu)).toBe(plans)
      expect(plans.map((q) => q.maxRows)).toEqual([...plans.map((q) => q.maxRows)].sort((a, b) => a - b))
      plans.forEach((q, i) => {
        if (q.minK !== undefined) expect(plans.slice(i + 1).some((r) => r.maxRows === q.maxRows && r.minK === undefined)).toBe(true)
        for (const l of [q.gateup, q.down]) if (l.mt > 0) expect(l.nr % (l.wr ?? 1)).toBe(0)
      })
    }
    expect(multiRowPlansForGpu('nvidia-h100-80gb-hbm3')).toBe(DEFAULT_MULTIROW_PLANS)
    expect(multiRowPlansForGpu('some-other-gpu')).toBe(DEFAULT_MULTIROW_PLANS)
    expect(multiRowPlansForGpu('')).toBe(DEFAULT_MULTIROW_PLANS)
    expect(multiRowPlansForGpu('constructor')).toBe(DEFAULT_MULTIROW_PLANS)
  })

  it('halves chunks per tile, then weight rows, until the workgroup and its memory fit the device', () => {
    const plans = [{ maxRows: 8, gateup: { mt: 32, nr: 64, ks: 8, cpt: 4 }, down: { mt: 32, nr: 64, ks: 8, cpt: 4 } }]
    const p = multiRowPlanFor(4, plans, { maxWg: 256, maxWgBytes: 16384 })!
    expect(p.gateup.nr * p.gateup.ks).toBeLessThanOrEqual(256)
    expect(16 * multiRowSharedVec4(p.gateup)).toBeLessThanOrEqual(16384)
    expect(p.gateup).toEqual({ mt: 32, nr: 32, ks: 8, cpt: 2 })
  })

  it('generates one barrier pair per K tile and per reduction pass, not per value', () => {
    const src = multiRowWgsl({ dtype: 'f16', kind: 'gateup', mt: 16, nr: 32, ks: 4, cpt: 4, kc: 512 })
    // 2 in the K loop + 2 per reduction pass (16 rows × 2 matrices in passes of 8 rows)
    expect(src.match(/workgroupBarrier\(\)/g)?.length).toBe(2 + 2 * 2)
  })

  it('pf 2 loads the next tile ahead (skipped past the last tile), pf 1 before the staging; fm writes fma chains; bad pf is refused', () => {
    const base = { dtype: 'f16', kind: 'gateup', mt: 4, nr: 8, ks: 4, cpt: 2, kc: 64 } as const
    const plain = multiRowWgsl(base)
    expect(plain).not.toContain('rawGate(wrow')
    expect(plain).toContain('dot(')
    const ahead = multiRowWgsl({ ...base, pf: 2 })
    // the first tile before the K loop, the next one inside it behind a uniform bound check
    expect(ahead).toMatch(/var nGate0 = rawGate\(wrow0 \+ min\(0u \+ ks/)
    expect(ahead).toContain('if (t0 + 8u < 64u) {')
    expect(ahead).toMatch(/nGate0 = rawGate\(wrow0 \+ min\(t0 \+ 8u \+ ks/)
    const before = multiRowWgsl({ ...base, pf: 1 })
    expect(before.indexOf('let pGate0 = rawGate(')).toBeLessThan(before.indexOf('// stage the block'))
    const chains = multiRowWgsl({ ...base, fm: true })
    expect(chains).not.toContain('dot(')
    expect(chains.match(/fma\(/g)?.length).toBe(2 * 4 * 2 * 8) // matrices × rows × chunks × values
    expect(() => multiRowWgsl({ ...base, pf: 3 as never })).toThrow(RangeError)
  })

  it('with wr weight rows per invocation: nr·ks/wr invocations, room for a reduction pass, wr dividing nr, kept when fitting', () => {
    expect(multiRowWorkgroup({ nr: 64, ks: 4, wr: 2 })).toBe(128)
    // 2 matrices × 4 rows = 8 values: two vec4 per invocation even when the tile is smaller
    expect(multiRowSharedVec4({ mt: 2, nr: 64, ks: 2, cpt: 1, wr: 4 })).toBe(2 * multiRowWorkgroup({ nr: 64, ks: 2, wr: 4 }))
    expect(() => multiRowWgsl({ dtype: 'f16', kind: 'down', mt: 8, nr: 6, ks: 4, cpt: 2, wr: 4, kc: 64 })).toThrow(RangeError)
    const src = multiRowWgsl({ dtype: 'f16', kind: 'down', mt: 8, nr: 32, ks: 4, cpt: 2, wr: 2, kc: 64 })
    expect(src).toContain('@workgroup_size(64)')
    expect(src).toContain('wrow1')
    const p = multiRowPlanFor(4, [{ maxRows: 8, gateup: { mt: 32, nr: 128, ks: 8, cpt: 4, wr: 2 }, down: { mt: 8, nr: 64, ks: 8, cpt: 1, wr: 4 } }], { maxWg: 256, maxWgBytes: 16384 })!
    for (const l of [p.gateup, p.down]) {
      expect(multiRowWorkgroup(l)).toBeLessThanOrEqual(256)
      expect(16 * multiRowSharedVec4(l)).toBeLessThanOrEqual(16384)
      expect(l.nr % (l.wr ?? 1)).toBe(0)
    }
    expect(p.down).toEqual({ mt: 8, nr: 64, ks: 8, cpt: 1, wr: 4 })
  })
})
