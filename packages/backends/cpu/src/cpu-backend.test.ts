import { createMoe, exactSizeDispatch, contiguousPlacement, pairsOf, type ModelShape } from '@moe-route/core'
import { randomRouting } from '@moe-route/core/testing'
import { describe, expect, it } from 'vitest'
import { cpuBackend, createCpuBackend, expertsForward, gateMatmul, naiveTokenLoop, outputChecksum, relativeL2 } from './index.js'
import { randomHidden, randomLayerWeights } from '@moe-route/workloads'

const shape: ModelShape = { experts: 6, topK: 2, hidden: 24, intermediate: 40, normalizeTopK: true }

describe('cpu reference kernels', () => {
  it('gate matmul matches a hand-computed case', () => {
    const x = new Float32Array([1, 2, 3, 4]) // T=2, H=2
    const router = new Float32Array([1, 0, 0, 1, 1, 1]) // E=3
    expect(Array.from(gateMatmul(x, router, 2, 2, 3))).toEqual([1, 2, 3, 3, 4, 7])
  })

  it('grouped experts equal the naive per-token loop', () => {
    const w = randomLayerWeights(shape, { seed: 3, std: 0.2 })
    const T = 37
    const x = randomHidden(T, shape.hidden, 5)
    const routing = randomRouting(T, shape.experts, shape.topK, 11, true)
    const plan = exactSizeDispatch(routing, { placement: contiguousPlacement(shape.experts, 1), bytesPerToken: 2 })
    const grouped = expertsForward(x, plan, w)
    const naive = naiveTokenLoop(x, T, pairsOf(routing), w)
    expect(relativeL2(grouped, naive)).toBeLessThan(1e-5)
    // Not trivially zero.
    expect(grouped.some((v) => Math.abs(v) > 1e-3)).toBe(true)
  })

  it('padding rows are computed but contribute nothing; dropped tokens get 0', () => {
    const w = randomLayerWeights(shape, { seed: 4, std: 0.2 })
    const x = randomHidden(3, shape.hidden, 2)
    const E = shape.experts
    // Expert 0 gets token 0 and a padding row; token 2 has no rows at all.
    const offsets = new Int32Array(E + 1)
    for (let e = 1; e <= E; e++) offsets[e] = e === 1 ? 2 : e === 2 ? 3 : 3
    const plan = {
      mode: 'static', tokens: 3, experts: E, offsets, counts: new Int32Array([1, 1, 0, 0, 0, 0]),
      rowToken: new Int32Array([0, -1, 1]), rowWeight: new Float32Array([0.5, 0, 1]), capacity: 2, paddingRows: 1,
      dropped: [], traffic: { devices: 1, sendRows: new Int32Array(1), bytesCrossDevice: 0 },
    }
    const out = expertsForward(x, plan, w)
    const ref = naiveTokenLoop(x, 3, [{ token: 0, expert: 0, weight: 0.5 }, { token: 1, expert: 1, weight: 1 }], w)
    expect(relativeL2(out, ref)).toBeLessThan(1e-5)
    expect(Array.from(out.subarray(2 * shape.hidden))).toEqual(new Array(shape.hidden).fill(0))
  })

  it('weights are seeded and deterministic', () => {
    const a = randomLayerWeights(shape, { seed: 9 })
    const b = randomLayerWeights(shape, { seed: 9 })
    const c = randomLayerWeights(shape, { seed: 10 })
    expect(outputChecksum(a.experts[3].down)).toBe(outputChecksum(b.experts[3].down))
    expect(outputChecksum(a.experts[3].down)).not.toBe(outputChecksum(c.experts[3].down))
  })
})

describe('cpu backend through the engine', () => {
  it('runs a whole layer from hidden states and matches the naive loop', async () => {
    const weights = randomLayerWeights(shape, { seed: 1, std: 0.2 })
    const engine = createMoe({ config: { model: shape }, plugins: [cpuBackend], weights })
    const T = 20
    const x = randomHidden(T, shape.hidden, 8)
    const result = await engine.forward({ id: 0, tokens: T, hidden: x })
    expect(result.output).toBeDefined()
    const ref = naiveTokenLoop(x, T, pairsOf(result.routing), weights)
    expect(relativeL2(result.output!, ref)).toBeLessThan(1e-5)
    expect(result.telemetry.pairsBefore).toBe(T * shape.topK)
    expect(result.telemetry.backend).toBe('cpu')
    expect(createCpuBackend().info().name).toBe('cpu')
  })
})

describe('cpu synthetic hidden states', () => {
  it('are workloads\' host values of the stream, so run feeds the same inputs on every backend', async () => {
    const { batchHidden } = await import('@moe-route/workloads')
    const { seededHiddenStream } = await import('@moe-route/core')
    const h = await createCpuBackend().syntheticHidden!(3, 8, seededHiddenStream(5, 2))
    expect(h).toEqual(batchHidden({ id: 2, tokens: 3 }, 8, 5))
  })
})
