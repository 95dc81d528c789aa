import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { requestNodeGpu } from './node-gpu.js'
import { keepAlive, webgpuTarget } from './webgpu-target.js'
import { ExpertBufferStore } from '../store/expert-buffer-store.js'
import { syntheticWeightSource, type WeightSource } from '../weights/weight-source.js'

// Real WebGPU (Dawn; lavapipe without a GPU). With CI set, a missing adapter fails the tests;
// otherwise they skip with a message.
let gpu: Awaited<ReturnType<typeof requestNodeGpu>> = null

async function readBack(device: GPUDevice, buffer: GPUBuffer, bytes: number): Promise<Uint8Array> {
  const staging = device.createBuffer({ label: 'test:readback', size: bytes, usage: 0x0001 | 0x0008 })
  const enc = device.createCommandEncoder()
  enc.copyBufferToBuffer(buffer, 0, staging, 0, bytes)
  device.queue.submit([enc.finish()])
  await keepAlive(staging.mapAsync(0x0001))
  const out = new Uint8Array(staging.getMappedRange().slice(0))
  staging.unmap()
  staging.destroy()
  return out
}

describe('webgpuTarget', () => {
  beforeAll(async () => {
    gpu = await requestNodeGpu().catch(() => null)
  })
  afterAll(() => gpu?.dispose())

  for (const uploadMode of ['write-buffer', 'staging'] as const) {
    it(`uploads experts into slot buffers (${uploadMode}); a failed load leaves slot contents intact`, async (ctx) => {
      if (!gpu) {
        if (process.env.CI) throw new Error('CI is set but no WebGPU adapter was found (install lavapipe)')
        ctx.skip('no WebGPU adapter found')
      }
      const device = gpu!.device
      const source = syntheticWeightSource({ experts: 6, hidden: 8, intermediate: 12, dtype: 'f16', seed: 7 })
      let failOn = -1
      const flaky: WeightSource = { ...source, read: (e) => (e === failOn ? Promise.reject(new Error('disk gone')) : source.read(e)) }
      const bytes = source.layout.bytes
      const target = webgpuTarget(device, { slots: 3, slotBytes: bytes, uploadMode, label: `test-${uploadMode}` })
      const store = new ExpertBufferStore({ experts: 6, slots: 3, weights: flaky, target: () => target, awaitUploads: true })
      const counts = new Int32Array(6)
      const t = await store.prepare({ batchId: 0, active: [1, 4, 5], counts })
      expect(t).toMatchObject({ misses: 3, bytesUploaded: 3 * bytes, resident: 3 })
      for (const e of [1, 4, 5]) {
        const b = store.binding(e)!
        expect(b.buffer).toBe(target.buffers[b.slot])
        expect(await readBack(device, b.buffer!, bytes)).toEqual(await source.read(e))
      }
      // 5 is inactive and last in: loading 2 would overwrite its slot — but the read fails.
      failOn = 2
      await expect(store.prepare({ batchId: 1, active: [1, 2, 4], counts })).rejects.toMatchObject({ code: 'MOE_ROUTE_ERR_STORE_LOAD_FAILED' })
      expect(store.resident()).toEqual([1, 4, 5])
      for (const e of [1, 4, 5]) expect(await readBack(device, store.binding(e)!.buffer!, bytes)).toEqual(await source.read(e))
      failOn = -1
      const t2 = await store.prepare({ batchId: 2, active: [1, 2, 4], counts })
      expect(t2).toMatchObject({ hits: 2, misses: 1, evicted: [5] })
      expect(await readBack(device, store.binding(2)!.buffer!, bytes)).toEqual(await source.read(2))
      await store.dispose()
    })
  }
})
