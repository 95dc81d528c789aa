/**
 * The backend contract: Backend methods against the CPU backend, the weight cache, the
 * plugin's registration and options, and the CPU fallback when the device is lost mid-stream.
 */
import { afterAll, describe, expect, it, vi } from 'vitest'
import { PluginRegistry, createMoe, exactSizeDispatch, isMoeError, softmaxTopK, type ModelShape } from '@moe-route/core'
import { cpuBackend, createCpuBackend, maxRelError } from '@moe-route/backend-cpu'
import { randomHidden, randomLayerWeights } from '@moe-route/workloads'
import capacityDrop from '@moe-route/policy-capacity/capacity-drop'
import { createWebGpuBackend, type WebGpuBackend } from './webgpu-backend.js'
import { webgpuBackend } from './plugin.js'
import { webgpuAdapterForTests } from './testing/gpu-env.js'

// WebGPU tests compile real shaders: on lavapipe with a cold Mesa shader cache (CI) a
// pipeline can take tens of seconds while the other test worker compiles too.
vi.setConfig({ testTimeout: 180_000 })

const adapter = await webgpuAdapterForTests()
const shape: ModelShape = { experts: 8, topK: 2, hidden: 32, intermediate: 48, normalizeTopK: true }
const weights = randomLayerWeights(shape, { seed: 21, std: 0.05 })
const cpu = createCpuBackend()

/** Simulates a device loss while a batch is on the GPU: the next submit destroys the device right after it. */
function loseOnNextSubmit(device: GPUDevice): void {
  const queue = device.queue
  const submit = queue.submit.bind(queue)
  queue.submit = (buffers: Iterable<GPUCommandBuffer>) => {
    submit(buffers)
    device.destroy()
  }
}

async function planFor(T: number, seed: number) {
  const x = randomHidden(T, shape.hidden, seed)
  const logits = await cpu.gate(x, T, weights)
  const routing = softmaxTopK({ tokens: T, experts: shape.experts, logits }, shape.topK, true)
  const plan = exactSizeDispatch(routing, { placement: { devices: 1, replicas: Array.from({ length: shape.experts }, () => [0]) }, bytesPerToken: 4 * shape.hidden } as never)
  return { x, plan }
}

describe('webgpu backend plugin', () => {
  it('registers with core, validates options and creates a backend named webgpu', () => {
    const registry = new PluginRegistry().register(webgpuBackend)
    expect(registry.get('backend', 'webgpu')).toBe(webgpuBackend)
    expect(() => registry.resolveOptions(webgpuBackend, { weightsDtype: 'bf16' })).toThrow(/weightsDtype/)
    const options = registry.resolveOptions(webgpuBackend, { weightsDtype: 'f16', profile: true })
    const b = webgpuBackend.create(options as never, { model: shape, devices: 1, seed: 1 })
    expect(b.name).toBe('webgpu')
    expect(b.info().name).toBe('webgpu')
  })
})

describe.skipIf(!adapter)(`webgpu backend on ${adapter}`, () => {
  const backends: WebGpuBackend[] = []
  const make = (...args: Parameters<typeof createWebGpuBackend>) => {
    const b = createWebGpuBackend(...args)
    backends.push(b)
    return b
  }
  afterAll(async () => {
    for (const b of backends) await b.dispose()
  })

  it('gate() and experts() agree with the CPU backend; info() names the adapter; weights upload once', async () => {
    const b = make({ profile: true })
    expect(await b.ready()).toBe(adapter)
    expect(b.info().adapter).toBe(adapter)
    const { x, plan } = await planFor(9, 4)
    expect(maxRelError(await b.gate(x, 9, weights), await cpu.gate(x, 9, weights))).toBeLessThan(1e-4)
    const r = await b.experts(x, plan, weights)
    expect(maxRelError(r.output, (await cpu.experts(x, plan, weights)).output)).toBeLessThan(1e-4)
    expect(r.fallback).toBeUndefined()
    const layer = await b.layer()
    expect(layer.deviceWeights(weights)).toBe(layer.deviceWeights(weights))
    const created = layer.ctx.pool.created
    await b.experts(x, plan, weights)
    expect(layer.ctx.pool.created).toBe(created) // pooled buffers reused, weights not re-uploaded
  })

  it('finishes the batch in flight on the CPU when the device is lost, says so, and recovers', async () => {
    const b = make()
    const { x, plan } = await planFor(17, 8)
    const expected = (await cpu.experts(x, plan, weights)).output
    await b.experts(x, plan, weights) // warm: device acquired, weights resident
    const device = (await b.layer()).ctx.device
    loseOnNextSubmit(device)
    const inFlight = b.experts(x, plan, weights)
    const r = await inFlight
    expect(r.fallback).toMatchObject({ from: 'webgpu', to: 'cpu' })
    expect(r.fallback!.reason).toMatch(/lost|failed/i)
    expect(maxRelError(r.output, expected)).toBeLessThan(1e-4)
    expect(b.lastFallback?.call).toBe('experts')
    expect(b.fallbackCount).toBe(1)
    // the next batch runs on a fresh device, not the CPU
    const next = await b.experts(x, plan, weights)
    expect(next.fallback).toBeUndefined()
    expect((await b.layer()).ctx.device).not.toBe(device)
    expect(maxRelError(next.output, expected)).toBeLessThan(1e-4)
  })

  it('the engine finishes a device-pipeline batch on its host path when the device is lost, and rebuilds the pipeline; strict mode refuses', async () => {
    const config = { model: shape, policies: [{ use: 'capacity-drop', options: { capacityFactor: 1.0 } }], backend: { use: 'webgpu', options: { weightsDtype: 'f32' } } }
    const engine = createMoe({ config, plugins: [capacityDrop, webgpuBackend], weights })
    const cpuEngine = createMoe({ config: { ...config, backend: { use: 'cpu' } }, plugins: [capacityDrop, cpuBackend], weights })
    const x = randomHidden(6, shape.hidden, 3)
    const ok = await engine.forward({ id: 0, tokens: 6, hidden: x })
    const ref = await cpuEngine.forward({ id: 0, tokens: 6, hidden: x })
    expect(maxRelError(ok.output!, ref.output!)).toBeLessThan(1e-4)
    const backend = engine.backend as WebGpuBackend
    loseOnNextSubmit((await backend.layer()).ctx.device)
    const r = await engine.forward({ id: 1, tokens: 6, hidden: x })
    expect(r.telemetry.fallback).toMatchObject({ from: 'webgpu pipeline' })
    expect(r.telemetry.fallback!.reason).toMatch(/lost/i)
    expect(maxRelError(r.output!, ref.output!)).toBeLessThan(1e-4)
    expect(r.telemetry.droppedPairs).toBe(ref.telemetry.droppedPairs)
    expect(backend.lastFallback?.call).toBe('pipeline')
    // the next batch runs on a new pipeline on a fresh device
    const next = await engine.forward({ id: 2, tokens: 6, hidden: x })
    expect(next.telemetry.fallback).toBeUndefined()
    expect(next.telemetry.timings.stages?.some((s) => s.stage === 'experts' && s.where === 'device')).toBe(true)
    expect(maxRelError(next.output!, ref.output!)).toBeLessThan(1e-4)
    await engine.dispose()

    const strict = make({ fallback: false })
    const { x: x2, plan: p2 } = await planFor(5, 2)
    await strict.experts(x2, p2, weights)
    loseOnNextSubmit((await strict.layer()).ctx.device)
    const q = strict.experts(x2, p2, weights)
    const err = await q.then(() => null, (e: unknown) => e)
    expect(isMoeError(err) && err.code).toBe('MOE_ROUTE_ERR_BACKEND_DEVICE_LOST')
  })
})
