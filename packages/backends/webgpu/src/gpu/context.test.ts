import { describe, expect, it, vi } from 'vitest'
import { isMoeError } from '@moe-route/core'
import { acquireDevice } from './device.js'
import { GpuContext } from './context.js'
import { webgpuAdapterForTests } from '../testing/gpu-env.js'
import { WebGpuMoeLayer } from '../layer.js'
import { uniforms, type KernelProgram } from './program.js'
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

  it('reuses a bind group for the same buffers and uniforms, and makes a new one when a bound buffer or the uniforms change (outputs, not a stale group)', async () => {
    const ctx = new GpuContext(await acquireDevice())
    // dst[i] = src[i] + u.x
    const addProgram: KernelProgram<{ add: number }> = {
      name: 'test-add',
      cacheKey: 'test-add',
      getShaderSource: () => `@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> dst: array<u32>;
@group(0) @binding(2) var<uniform> u: vec4<u32>;
@compute @workgroup_size(4) fn main(@builtin(local_invocation_index) i: u32) { dst[i] = src[i] + u.x; }`,
      getRunData: ({ add }) => ({ dispatch: [1, 1, 1], uniforms: uniforms([add]) }),
    }
    const made = vi.spyOn(ctx.device, 'createBindGroup')
    const run = async (src: GPUBuffer, add: number): Promise<number[]> => {
      const dst = ctx.storage(16, 'dst')
      const rec = ctx.recorder('add')
      rec.run(addProgram, { add }, [src, dst])
      rec.read(dst, 16)
      rec.releaseAfterSubmit(dst)
      const { reads } = await rec.submit()
      return [...new Uint32Array(reads[0])]
    }
    const a = ctx.upload(new Uint32Array([1, 2, 3, 4]), 'src')
    expect(await run(a, 0)).toEqual([1, 2, 3, 4])
    expect(await run(a, 0)).toEqual([1, 2, 3, 4])
    expect(made).toHaveBeenCalledTimes(1) // the pooled dst came back: the same group
    expect(await run(a, 10)).toEqual([11, 12, 13, 14])
    expect(made).toHaveBeenCalledTimes(2)
    // the source replaced: a new buffer under the same label and size (the old one destroyed)
    a.destroy()
    const b = ctx.upload(new Uint32Array([5, 6, 7, 8]), 'src')
    expect(b).not.toBe(a)
    expect(await run(b, 10)).toEqual([15, 16, 17, 18])
    expect(made).toHaveBeenCalledTimes(3)
    // back to earlier words: the group made for them, over the same buffers, is found again
    expect(await run(b, 0)).toEqual([5, 6, 7, 8])
    expect(await run(b, 10)).toEqual([15, 16, 17, 18])
    expect(made).toHaveBeenCalledTimes(4)
    made.mockRestore()
    ctx.dispose()
  })
})
