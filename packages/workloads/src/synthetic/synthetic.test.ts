import { seededHidden, seededHiddenStream, seededNormals, type Backend, type DeviceTensor } from '@moe-route/core'
import { describe, expect, it } from 'vitest'
import { batchHidden, randomHidden, randomLayerWeights, withSyntheticHidden } from './synthetic.js'

describe('synthetic layer inputs', () => {
  it('a batch gets the hidden states of its own stream, the same on every call', () => {
    const a = batchHidden({ id: 3, tokens: 4 }, 8, 7)
    expect(a).toEqual(seededNormals(new Float32Array(32), seededHiddenStream(7, 3), 1))
    expect(batchHidden({ id: 3, tokens: 4 }, 8, 7)).toEqual(a)
    expect(batchHidden({ id: 4, tokens: 4 }, 8, 7)).not.toEqual(a)
    expect(seededHidden(4, 8, seededHiddenStream(7, 3))).toEqual(a)
  })

  it('a backend that makes hidden states where it computes is asked for them; without one they are made on the host', async () => {
    const tensor = { label: 'x' } as unknown as DeviceTensor
    const asked: number[][] = []
    const gpu = { syntheticHidden: async (t: number, h: number, s: number) => (asked.push([t, h, s]), tensor) } as unknown as Backend
    const onDevice = await withSyntheticHidden({ id: 2, tokens: 5 }, { hidden: 8, seed: 1, backend: gpu })
    expect(onDevice.deviceHidden).toBe(tensor)
    expect(asked).toEqual([[5, 8, seededHiddenStream(1, 2)]])
    const onHost = await withSyntheticHidden({ id: 2, tokens: 5 }, { hidden: 8, seed: 1 })
    expect(onHost.hidden).toEqual(batchHidden({ id: 2, tokens: 5 }, 8, 1))
  })

  it('random weights and hidden states are seeded and refuse a bad shape', () => {
    const shape = { experts: 2, topK: 1, hidden: 4, intermediate: 6, normalizeTopK: true }
    expect(randomLayerWeights(shape, { seed: 3 }).experts[1].down).toEqual(randomLayerWeights(shape, { seed: 3 }).experts[1].down)
    expect(randomHidden(2, 4, 9)).toEqual(randomHidden(2, 4, 9))
    expect(() => randomLayerWeights({ ...shape, hidden: 0 })).toThrow(/model.hidden/)
  })
})
