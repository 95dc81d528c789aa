/** The multi-row plan table lookup and its fit to device limits (no GPU needed). */
import { describe, expect, it } from 'vitest'
import { DEFAULT_MULTIROW_PLANS, MULTIROW_PLANS_BY_GPU, multiRowPlanFor, multiRowPlansForGpu } from './expert-ffn.program.js'
import { multiRowSharedVec4, multiRowWgsl } from './expert-multirow.wgsl.js'

const roomy = { maxWg: 1024, maxWgBytes: 32768 }

describe('multi-row decode plans', () => {
  it('picks the first plan whose maxRows covers the typical group; single-row GEMV for one row and past the table', () => {
    expect(multiRowPlanFor(1, DEFAULT_MULTIROW_PLANS, roomy)).toBeNull()
    expect(multiRowPlanFor(2, DEFAULT_MULTIROW_PLANS, roomy)?.gateup.mt).toBe(4)
    expect(multiRowPlanFor(3, DEFAULT_MULTIROW_PLANS, roomy)?.gateup.mt).toBe(16)
    expect(multiRowPlanFor(32, DEFAULT_MULTIROW_PLANS, roomy)?.down.nr).toBe(128)
    expect(multiRowPlanFor(33, DEFAULT_MULTIROW_PLANS, roomy)).toBeNull()
  })

  it('per GPU model: a measured table by the adapter device string, else the default; every table starts with the single-row plan', () => {
    for (const [gpu, plans] of Object.entries(MULTIROW_PLANS_BY_GPU)) {
      expect(multiRowPlansForGpu(gpu)).toBe(plans)
      expect(multiRowPlanFor(1, plans, roomy)).toBeNull()
      expect(plans.map((q) => q.maxRows)).toEqual([...plans.map((q) => q.maxRows)].sort((a, b) => a - b))
    }
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
})
