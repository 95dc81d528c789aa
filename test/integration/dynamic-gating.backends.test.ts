/**
 * Both modes through the real backends: @moe-route/backend-cpu always, @moe-route/backend-webgpu
 * on whatever adapter Dawn finds (lavapipe in CI). With CI set, a missing adapter or backend
 * fails the suite instead of skipping it.
 */
import { createCpuBackend, naiveTokenLoop, relativeL2 } from '@moe-route/backend-cpu'
import { randomHidden, randomLayerWeights } from '@moe-route/workloads'
import { contiguousPlacement, pairsOf, softmaxTopK, type Backend, type DispatchPlan, type LayerWeights, type ModelShape, type Routing } from '@moe-route/core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { dispatchStats, dynamicDispatch, staticDispatch } from '@moe-route/policy-dynamic-gating'

/** Relative L2 tolerance between backends and against the naive oracle (f32 accumulation order differs). */
const TOL = 1e-4
const shape: ModelShape = { experts: 8, topK: 2, hidden: 32, intermediate: 64, normalizeTopK: false }
const T = 48

interface Fixture {
  weights: LayerWeights
  x: Float32Array
  routing: Routing
}

async function fixture(backend: Backend): Promise<Fixture> {
  const weights = randomLayerWeights(shape, { seed: 5, routerStd: 0.5 })
  const x = randomHidden(T, shape.hidden, 6)
  const logits = await backend.gate(x, T, weights)
  return { weights, x, routing: softmaxTopK({ tokens: T, experts: shape.experts, logits }, shape.topK, shape.normalizeTopK) }
}

const ctx = { placement: contiguousPlacement(shape.experts, 1), bytesPerToken: shape.hidden * 4 }

/** Output rows of `tokens` only. */
function rows(out: Float32Array, tokens: readonly number[]): Float32Array {
  const H = shape.hidden
  const o = new Float32Array(tokens.length * H)
  tokens.forEach((t, i) => o.set(out.subarray(t * H, (t + 1) * H), i * H))
  return o
}

/** The checks every backend must pass. */
function suite(name: string, getBackend: () => Backend | null, whyMissing: () => string = () => '') {
  let f: Fixture
  let backend: Backend | null = null
  const run = async (plan: DispatchPlan) => {
    const res = await backend!.experts(f.x, plan, f.weights)
    expect(res.fallback).toBeUndefined()
    return res.output
  }
  /** A test that is skipped (with the reason) when the backend is missing outside CI. */
  const check = (title: string, body: () => Promise<void>) =>
    it(`${name}: ${title}`, async (t) => {
      if (!backend) return t.skip(`${name} backend unavailable: ${whyMissing()}`)
      await body()
    })

  beforeAll(async () => {
    backend = getBackend()
    f = await fixture(createCpuBackend())
  })

  check('dynamic gating matches the naive per-token loop', async () => {
    const out = await run(dynamicDispatch(f.routing, ctx))
    expect(relativeL2(out, naiveTokenLoop(f.x, T, pairsOf(f.routing), f.weights))).toBeLessThan(TOL)
  })

  check('static gating with room for every pair gives the dynamic output', async () => {
    const plan = staticDispatch(f.routing, ctx, { capacityFactor: 1 })
    expect(plan.dropped).toEqual([])
    expect(plan.paddingRows).toBe(shape.experts * T - T * shape.topK)
    expect(relativeL2(await run(plan), await run(dynamicDispatch(f.routing, ctx)))).toBeLessThan(TOL)
  })

  check('static gating with overflow gives the dynamic output for tokens it did not drop', async () => {
    const plan = staticDispatch(f.routing, ctx, { capacityFraction: 0.15 }) // cap 8 of ~12 pairs per expert
    expect(plan.dropped.length).toBeGreaterThan(0)
    const hit = new Set(plan.dropped.map((d) => d.token))
    const clean = Array.from({ length: T }, (_, t) => t).filter((t) => !hit.has(t))
    expect(clean.length).toBeGreaterThan(0)
    const out = await run(plan)
    const dyn = await run(dynamicDispatch(f.routing, ctx))
    expect(relativeL2(rows(out, clean), rows(dyn, clean))).toBeLessThan(TOL)
    // dropped pairs contribute nothing: the whole output equals the oracle over the kept pairs
    const dropped = new Set(plan.dropped.map((d) => `${d.token}:${d.expert}`))
    const kept = pairsOf(f.routing).filter((p) => !dropped.has(`${p.token}:${p.expert}`))
    expect(relativeL2(out, naiveTokenLoop(f.x, T, kept, f.weights))).toBeLessThan(TOL)
    const s = dispatchStats(plan, { hidden: shape.hidden, bytesPerElement: 4 })
    expect(s.slotsComputed).toBe(shape.experts * 8)
  })
}

describe('CPU backend', () => {
  suite('cpu', () => createCpuBackend())
})

// ---- WebGPU (Dawn) -----------------------------------------------------------------------

type WebGpuModule = Record<string, unknown>
let gpuBackend: Backend | null = null
let gpuSkip = ''

/** Creates the WebGPU backend through whichever factory the package exports. */
async function createWebGpu(): Promise<Backend> {
  process.env.XDG_RUNTIME_DIR ??= '/tmp'
  const mod = (await import('@moe-route/backend-webgpu')) as WebGpuModule
  // the factory acquires the device lazily (on the first batch): ask for an adapter first, so a
  // machine without one skips here instead of failing in the first test
  const probe = mod.probeAdapter as (() => Promise<string | null>) | undefined
  if (probe && !(await probe())) throw new Error('no WebGPU adapter (no Vulkan driver); run scripts/install-lavapipe.sh for Mesa lavapipe')
  const factory = (mod.createWebGpuBackend ?? mod.createWebgpuBackend) as ((o?: object) => Promise<Backend> | Backend) | undefined
  // no CPU fallback: a device problem must fail the parity tests, not pass them on the CPU
  if (typeof factory === 'function') return await factory({ fallback: false })
  throw new Error('@moe-route/backend-webgpu exports no createWebGpuBackend()')
}

describe('WebGPU backend', () => {
  beforeAll(async () => {
    try {
      gpuBackend = await createWebGpu()
    } catch (e) {
      gpuSkip = (e as Error).message
      if (process.env.CI || process.env.MOE_ROUTE_REQUIRE_WEBGPU) throw new Error(`CI is set but the WebGPU backend is unavailable: ${gpuSkip}`)
    }
  }, 120_000)
  afterAll(async () => {
    await gpuBackend?.dispose?.()
  })
  it('is available (or skipped outside CI)', (t) => {
    if (!gpuBackend) t.skip(`WebGPU backend unavailable: ${gpuSkip}`)
    expect(gpuBackend!.info().name).toBeTruthy()
  })
  suite('webgpu', () => gpuBackend, () => gpuSkip)
})
