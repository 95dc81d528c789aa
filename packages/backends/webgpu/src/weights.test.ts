import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { seededLayerWeights, type ModelShape } from '@moe-route/core'
import { acquireDevice } from './gpu/device.js'
import { GpuContext } from './gpu/context.js'
import { webgpuAdapterForTests } from './testing/gpu-env.js'
import { generateLayerWeights, readExpertWeights, readRouterWeight } from './weights.js'

const adapter = await webgpuAdapterForTests()

describe.skipIf(!adapter)('weights generated on the GPU', () => {
  let ctx: GpuContext
  beforeAll(async () => {
    ctx = new GpuContext(await acquireDevice())
  })
  afterAll(() => ctx?.dispose())

  it.each(['f32', 'f16'] as const)('are seeded normal(0, std) (%s)', async (dtype) => {
    const shape: ModelShape = { experts: 4, topK: 2, hidden: 64, intermediate: 128, normalizeTopK: true }
    const dw = await generateLayerWeights(ctx, shape, { seed: 7, std: 0.02, dtype })
    const e1 = await readExpertWeights(ctx, dw, 1)
    const router = await readRouterWeight(ctx, dw)
    for (const a of [e1.gate, e1.up, e1.down, router]) {
      let mean = 0
      for (const v of a) mean += v
      mean /= a.length
      let sd = 0
      for (const v of a) sd += (v - mean) ** 2
      sd = Math.sqrt(sd / a.length)
      expect(Math.abs(mean)).toBeLessThan(0.002)
      expect(sd).toBeGreaterThan(0.018)
      expect(sd).toBeLessThan(0.022)
    }
    const again = await readExpertWeights(ctx, await generateLayerWeights(ctx, shape, { seed: 7, std: 0.02, dtype }), 1)
    expect(Array.from(again.down.subarray(0, 64))).toEqual(Array.from(e1.down.subarray(0, 64)))
    expect(Array.from(e1.gate.subarray(0, 64))).not.toEqual(Array.from(e1.up.subarray(0, 64)))
  })

  it('are core\'s seededLayerWeights to f32 rounding (f32; no reliance on WGSL\'s coarse cos/sin/log)', async () => {
    const shape: ModelShape = { experts: 2, topK: 2, hidden: 64, intermediate: 96, normalizeTopK: true }
    const std = 0.05
    const dw = await generateLayerWeights(ctx, shape, { seed: 3, std, dtype: 'f32' })
    const host = seededLayerWeights(shape, 3, std)
    const pairs: [string, Float32Array, Float32Array][] = [['router', await readRouterWeight(ctx, dw), host.router]]
    for (let e = 0; e < shape.experts; e++) {
      const d = await readExpertWeights(ctx, dw, e)
      pairs.push([`gate ${e}`, d.gate, host.experts[e].gate], [`up ${e}`, d.up, host.experts[e].up], [`down ${e}`, d.down, host.experts[e].down])
    }
    for (const [what, dev, ref] of pairs) {
      let worst = 0
      for (let i = 0; i < ref.length; i++) worst = Math.max(worst, Math.abs(dev[i] - ref[i]))
      // measured ≤ 2e-7 (SwiftShader in Chromium, test/browser); WGSL's cos/sin/log builtins gave 3.7e-5 there
      expect(worst, what).toBeLessThan(2e-6)
    }
  })
})
