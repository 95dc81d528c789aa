/**
 * Checks that a policy's GPU lowering makes exactly the decisions of its host `apply`: on
 * generated routings, the routing the lowering writes (through a real WebGPU device: Dawn in
 * Node, Mesa lavapipe without a GPU) has the same pairs, weights within 1e-6, the same dropped
 * and moved pairs and the same per-policy telemetry as `apply` on the same input.
 * @example
 * import { it } from 'vitest'
 * import { checkLowering } from '@moe-route/testkit'
 * it('lowers exactly', () => checkLowering(myPolicy, { threshold: 0.1 }, { runs: 50 }), 120_000)
 */
import {
  contiguousPlacement,
  createRegistry,
  exactSizeDispatcher,
  mixSeed,
  mulberry32,
  pairsOf,
  type DevicePipeline,
  type Dispatcher,
  type LoweringContext,
  type ModelShape,
  type Plugin,
  type PolicyOutcome,
  type Router,
  type Routing,
  type RoutingPolicy,
} from '@moe-route/core'
import fc from 'fast-check'
import { routingCase, type RoutingCase, type RoutingConstraints } from './arbitraries.js'
import { ConformanceError } from './checks.js'

/** Settings of {@link checkLowering}. */
export interface LoweringSettings {
  /** Generated cases (default 60). */
  readonly runs?: number
  /** fast-check seed (to replay a failure). */
  readonly seed?: number
  /** Bounds of generated routings (default: up to 40 tokens, 16 experts, k ≤ 4, 4 devices). */
  readonly routings?: RoutingConstraints
  /** Absolute weight tolerance, scaled by max(1, |weight|) (default 1e-6). */
  readonly tolerance?: number
  /**
   * A WebGPU backend to run on (default: `createWebGpuBackend()` from
   * `@moe-route/backend-webgpu`, which must then be installed).
   */
  readonly backend?: { pipeline(spec: never): Promise<DevicePipeline>; dispose?(): unknown }
}

/** A pair as compared: token, expert, weight. */
type P = { token: number; expert: number; weight: number }

const fail = (plugin: Plugin, message: string): never => {
  throw new ConformanceError(plugin.meta.name, message)
}

/**
 * Runs the policy's lowering on a WebGPU device against its host `apply` on generated
 * routings; throws a ConformanceError naming the first difference (with the fast-check seed
 * to replay it). Configurations whose `lower()` returns null (host round trip) are reported
 * as a failure unless the case is one the plugin documents as host-only: pass
 * `routings` that stay inside the lowered range.
 */
export async function checkLowering(plugin: Plugin<'policy'>, options: unknown, settings: LoweringSettings = {}): Promise<void> {
  const backend = settings.backend ?? (await defaultBackend())
  const tol = settings.tolerance ?? 1e-6
  const pipelines = new Map<string, { pipeline: DevicePipeline; feed: { routing: Routing | null } }>()
  const registry = createRegistry([plugin])
  const policyFor = (c: RoutingCase, model: ModelShape): RoutingPolicy =>
    registry.create('policy', plugin.meta.name, options, { model, devices: c.devices, seed: c.seed, placement: contiguousPlacement(model.experts, c.devices) })
  const pipelineFor = async (c: RoutingCase, model: ModelShape, policy: RoutingPolicy) => {
    const key = `${model.experts}|${model.topK}|${model.normalizeTopK}|${c.devices}|${c.seed}`
    let p = pipelines.get(key)
    if (p) return p
    const feed: { routing: Routing | null } = { routing: null }
    // the router hands the generated routing over as it is (a host stage: uploaded once)
    const router: Router = { name: 'given', route: () => feed.routing! }
    const dispatcher = exactSizeDispatcher.create({}, { model, devices: c.devices, seed: c.seed }) as Dispatcher
    const placement = contiguousPlacement(model.experts, c.devices)
    const lowerCtx: LoweringContext = { model, devices: c.devices, placement, slotsIn: model.topK, subgroups: false, subgroupSize: null, maxWorkgroupSize: 256 }
    if (!policy.lower || !policy.lower(lowerCtx)) fail(plugin, `has no GPU lowering for options ${JSON.stringify(options)} (E=${model.experts}, k=${model.topK}, devices=${c.devices})`)
    const pipeline = await backend.pipeline({
      model,
      placement,
      seed: c.seed,
      router,
      policies: [policy],
      dispatcher,
      weights: { kind: 'seeded', seed: 1, std: 0.02 },
      activationBytes: 2,
    } as never)
    if (pipeline.stages[1]?.where !== 'device') fail(plugin, 'the device pipeline ran the policy on the host: lower() returned no stage')
    p = { pipeline, feed }
    pipelines.set(key, p)
    return p
  }
  try {
    await fc.assert(
      fc.asyncProperty(routingCase({ maxTokens: 40, ...settings.routings }), async (c) => {
        const r = c.routing
        // the kernels need E ≤ 256, k ≤ 16; hidden/intermediate are never used (routing only)
        const model: ModelShape = { experts: r.experts, topK: r.topK, hidden: 16, intermediate: 16, normalizeTopK: r.normalizeTopK }
        const policy = policyFor(c, model)
        const host: PolicyOutcome = policy.apply(r, { placement: contiguousPlacement(r.experts, c.devices), batchId: c.batchId, random: mulberry32(mixSeed(c.seed, c.batchId, 0)) })
        const { pipeline, feed } = await pipelineFor(c, model, policy)
        feed.routing = r
        const res = await pipeline.forward(
          { id: c.batchId, tokens: r.tokens, scores: r.scores, ...(r.sourceDevice ? { sourceDevice: r.sourceDevice } : {}), ...(r.decode ? { decode: true } : {}) },
          { detail: 'full', output: 'norm' },
        )
        const d = res.detail!
        const where = `T=${r.tokens} E=${r.experts} k=${r.topK} devices=${c.devices}${r.sourceDevice ? ' with sourceDevice' : ''}${r.decode ? ' decode' : ''}`
        comparePairs(plugin, pairsOf(host.routing), pairsOf(d.routing), tol, `routing (${where})`)
        const key = (x: { token: number; expert: number; reason?: string }) => `${x.token}:${x.expert}:${x.reason ?? ''}`
        const hd = host.dropped.map(key)
        const gd = d.dropped.filter((x) => x.policy === plugin.meta.name).map(key)
        if (hd.join() !== gd.join()) fail(plugin, `dropped pairs differ on ${where}: host [${hd.join(' ')}], device [${gd.join(' ')}]`)
        const hr = (host.rerouted ?? []).map((x) => `${x.token}:${x.from}>${x.to}`)
        const gr = d.rerouted.map((x) => `${x.token}:${x.from}>${x.to}`)
        if (hr.join() !== gr.join()) fail(plugin, `moved pairs differ on ${where}: host [${hr.join(' ')}], device [${gr.join(' ')}]`)
        const t = res.counts.policies[0]
        const expect = { dropped: host.dropped.length, rerouted: host.rerouted?.length ?? 0, added: host.added?.length ?? 0, capacity: host.capacity ?? null, skipped: host.skipped ?? null }
        const got = { dropped: t.dropped, rerouted: t.rerouted, added: t.added, capacity: t.capacity, skipped: t.skipped ?? null }
        if (JSON.stringify(expect) !== JSON.stringify(got)) fail(plugin, `telemetry differs on ${where}: host ${JSON.stringify(expect)}, device ${JSON.stringify(got)}`)
      }),
      { numRuns: settings.runs ?? 60, ...(settings.seed !== undefined ? { seed: settings.seed } : {}) },
    )
  } finally {
    for (const { pipeline } of pipelines.values()) await pipeline.dispose()
    if (!settings.backend) await backend.dispose?.()
  }
}

function comparePairs(plugin: Plugin, host: P[], device: P[], tol: number, where: string): void {
  const sort = (a: P, b: P) => a.token - b.token || a.expert - b.expert
  const h = host.slice().sort(sort)
  const g = device.slice().sort(sort)
  const ids = (x: P[]) => x.map((p) => `${p.token}:${p.expert}`).join(' ')
  if (ids(h) !== ids(g)) fail(plugin, `pairs differ in the ${where}: host [${ids(h)}], device [${ids(g)}]`)
  h.forEach((p, i) => {
    if (Math.abs(p.weight - g[i].weight) > tol * Math.max(1, Math.abs(p.weight))) {
      fail(plugin, `weight of (token ${p.token}, expert ${p.expert}) differs in the ${where}: host ${p.weight}, device ${g[i].weight}`)
    }
  })
}

async function defaultBackend(): Promise<{ pipeline(spec: never): Promise<DevicePipeline>; dispose?(): unknown }> {
  let mod: { createWebGpuBackend(o?: object): { pipeline(spec: never): Promise<DevicePipeline>; dispose(): Promise<void> } }
  try {
    mod = (await import('@moe-route/backend-webgpu')) as never
  } catch (cause) {
    throw new ConformanceError('checkLowering', `needs @moe-route/backend-webgpu (npm install -D @moe-route/backend-webgpu): ${(cause as Error).message}`)
  }
  return mod.createWebGpuBackend({ weightsDtype: 'f32' })
}
