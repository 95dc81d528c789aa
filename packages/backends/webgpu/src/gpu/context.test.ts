import { describe, expect, it } from 'vitest'
import { isMoeError } from '@moe-route/core'
import { acquireDevice } from './device.js'
import { GpuContext } from './context.js'
import { webgpuAdapterForTests } from '../testing/gpu-env.js'

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
})
