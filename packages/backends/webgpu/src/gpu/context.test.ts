import { describe, expect, it } from 'vitest'
import { isMoeError } from '@moe-route/core'
import { acquireDevice } from './device.js'
import { GpuContext } from './context.js'
import { webgpuAdapterForTests } from '../testing/gpu-env.js'
import { WebGpuMoeLayer } from '../layer.js'
import { randomHidden, randomLayerWeights } from '@moe-route/core/testing'

const adapter = await webgpuAdapterForTests()

describe.skipIf(!adapter)('GpuContext', () => {
  it('turns a GPU validation error into a coded error at submit, not a silent zero result', async () => {
    const ctx = new GpuContext(await acquireDevice())
    const rec = ctx.recorder('broken-kernel')
    const broken = { name: 'broken', cacheKey: 'broken|test', getShaderSource: () => 'fn main( {', getRunData: () => ({ dispatch: [1, 1, 1], uniforms: new Uint32Array(4) }) }
    rec.run(broken as never, {}, [])
    const err = await rec.submit().then(() => null, (e: unknown) => e)
    expect(isMoeError(err) && err.code).toBe('MOE_ROUTE_ERR_BACKEND_KERNEL_FAILED')
    // The error is reported once; the next clean submit succeeds.
    await expect(ctx.recorder('clean').submit()).resolves.toEqual({ reads: [] })
    ctx.dispose()
  })

  it('keeps the working set of repeated calls pooled after a call of another shape (no buffer re-created per call)', async () => {
    const shape = { experts: 4, topK: 2, hidden: 64, intermediate: 64, normalizeTopK: true }
    const weights = randomLayerWeights(shape, { seed: 3 })
    const acquired = await acquireDevice()
    const x = randomHidden(8, 64, 8)
    // the free bytes one 8-token gate call leaves in the pool: its working set
    const probe = new GpuContext(acquired)
    await new WebGpuMoeLayer(probe).gate(x, 8, weights)
    const small = probe.pool.bytes
    probe.dispose()
    // a cap that holds that set, but not with a 12-token call's buffers (other size buckets) beside it
    const ctx = new GpuContext(acquired, { maxPooledBytes: small + 1024 })
    const layer = new WebGpuMoeLayer(ctx)
    await layer.gate(randomHidden(12, 64, 1), 12, weights)
    await layer.gate(x, 8, weights)
    const created = ctx.pool.created
    for (let i = 0; i < 3; i++) await layer.gate(x, 8, weights)
    // the 8-token set stays pooled: the 12-token buffers were evicted instead of the ones just released
    expect(ctx.pool.created).toBe(created)
    expect(ctx.pool.evicted).toBeGreaterThan(0)
    ctx.dispose()
  })

  it('runs clearFirst ahead of every command recorded before or after it, and clear in order', async () => {
    const ctx = new GpuContext(await acquireDevice())
    const src = ctx.upload(new Uint32Array([7, 8, 9, 10]), 'src')
    const a = ctx.storage(16, 'a', 0x4 /* COPY_SRC */)
    const b = ctx.storage(16, 'b', 0x4)
    const rec = ctx.recorder('clears')
    rec.copy(src, 0, a, 0, 16)
    rec.copy(src, 0, b, 0, 16)
    rec.clearFirst(a, 16) // runs before the copy into a
    rec.clear(b, 8) // runs after the copy into b
    rec.read(a, 16)
    rec.read(b, 16)
    const { reads } = await rec.submit()
    expect([...new Uint32Array(reads[0])]).toEqual([7, 8, 9, 10])
    expect([...new Uint32Array(reads[1])]).toEqual([0, 0, 9, 10])
    ctx.dispose()
  })
})
