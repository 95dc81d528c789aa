/**
 * Checks that a plugin's GPU lowering makes exactly the decisions of its host implementation,
 * through a real WebGPU device (Dawn in Node, Mesa lavapipe without a GPU), on generated
 * batches: `checkLowering` for policies (same pairs, weights within 1e-6, same dropped and
 * moved pairs, same per-policy telemetry as `apply`), `checkRouterLowering` for routers (same
 * slots and weights as `route`, gate probabilities within 1e-6) and `checkDispatcherLowering`
 * for dispatchers (the same plan as `dispatch`: groups, rows, padding, overflow).
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
  softmaxRows,
  type DevicePipeline,
  type DispatchPlan,
  type Dispatcher,
  type Lowerable,
  type LoweringContext,
  type ModelShape,
  type PlacementMap,
  type Plugin,
  type PolicyOutcome,
  type Router,
  type RouterInput,
  type Routing,
  type RoutingPolicy,
} from '@moe-route/core'
import fc from 'fast-check'
import { routerInputCase, routingCase, type RouterInputCase, type RoutingCase, type RoutingConstraints } from './arbitraries.js'
import { ConformanceError } from './checks.js'

/** Settings of {@link checkLowering}, {@link checkRouterLowering} and {@link checkDispatcherLowering}. */
export interface LoweringSettings {
  /** Generated cases (default 60). */
  readonly runs?: number
  /** fast-check seed (to replay a failure). */
  readonly seed?: number
  /** Bounds of generated routings (default: up to 40 tokens, 16 experts, k ≤ 4, 4 devices). */
  readonly routings?: RoutingConstraints
  /**
   * The placement of E experts over the case's devices (default `contiguousPlacement`): for
   * policies that read it (primary devices, replicas), check the lowering under others too.
   */
  readonly placement?: (experts: number, devices: number) => PlacementMap
  /** Cases checked before the generated ones (hand-made corner cases: extreme scores, exact ties). */
  readonly examples?: readonly RoutingCase[]
  /** Absolute weight tolerance, scaled by max(1, |weight|) (default 1e-6). */
  readonly tolerance?: number
  /**
   * A WebGPU backend to run on (default: `createWebGpuBackend()` from
   * `@moe-route/backend-webgpu`, which must then be installed).
   */
  readonly backend?: { pipeline(spec: never): Promise<DevicePipeline>; dispose?(): unknown }
}

/** Options of a plugin under check: fixed, or made per generated model (and case seed). */
export type LoweringOptions = object | ((model: ModelShape, seed: number) => object)

/** A pair as compared: token, expert, weight. */
type P = { token: number; expert: number; weight: number }
type Backend = NonNullable<LoweringSettings['backend']>

/** Hidden and activation sizes of the routing-only pipelines (never used: no hidden states). */
const HIDDEN = 16
const ACTIVATION_BYTES = 2

const fail = (plugin: Plugin, message: string): never => {
  throw new ConformanceError(plugin.meta.name, message)
}

const modelOf = (c: { experts: number; topK: number; normalizeTopK: boolean }): ModelShape => ({
  // the kernels need E ≤ 256, k ≤ 16; hidden/intermediate are never used (routing only)
  experts: c.experts,
  topK: c.topK,
  hidden: HIDDEN,
  intermediate: HIDDEN,
  normalizeTopK: c.normalizeTopK,
})

const optionsFor = (options: LoweringOptions, model: ModelShape, seed: number): unknown =>
  typeof options === 'function' ? (options as (m: ModelShape, s: number) => unknown)(model, seed) : options

const lowerContext = (model: ModelShape, placement: PlacementMap, slotsIn: number): LoweringContext => ({
  model,
  devices: placement.devices,
  placement,
  slotsIn,
  subgroups: false,
  subgroupSize: null,
  maxWorkgroupSize: 256,
})

/** A pipeline under check and the routing its `given` router hands over next. */
interface CheckedPipeline {
  readonly pipeline: DevicePipeline
  /** Sets the routing the pipeline's `given` router returns (uploaded once per batch). */
  give(routing: Routing): void
}

/** Builds (once per key) a pipeline from a spec made with a `given` host router at hand. */
type PipelineFor = (key: string, spec: (given: Router) => object) => Promise<CheckedPipeline>

/** Pipelines are shared by the cases of one shape, devices and seed. */
const caseKey = (model: ModelShape, devices: number, seed: number) => `${model.experts}|${model.topK}|${model.normalizeTopK}|${devices}|${seed}`

/**
 * What every check shares: the backend, pipelines cached by key (compiled stages are cached
 * per device by their key anyway), the property run and the clean-up.
 */
async function runOnDevice<C>(settings: LoweringSettings, cases: fc.Arbitrary<C>, body: (c: C, pipelineFor: PipelineFor) => Promise<void>): Promise<void> {
  const backend = settings.backend ?? (await defaultBackend())
  const pipelines = new Map<string, CheckedPipeline>()
  const pipelineFor: PipelineFor = async (key, spec) => {
    let p = pipelines.get(key)
    if (!p) {
      let next: Routing | null = null
      const given: Router = { name: 'given', route: () => next! }
      const pipeline = await backend.pipeline({ weights: { kind: 'seeded', seed: 1, std: 0.02 }, activationBytes: ACTIVATION_BYTES, ...spec(given) } as never)
      p = { pipeline, give: (r) => void (next = r) }
      pipelines.set(key, p)
    }
    return p
  }
  try {
    const examples = (settings.examples ?? []) as unknown as C[]
    await fc.assert(fc.asyncProperty(cases, (c) => body(c, pipelineFor)), {
      // fast-check counts examples among the runs: add them on top
      numRuns: (settings.runs ?? 60) + examples.length,
      ...(settings.seed !== undefined ? { seed: settings.seed } : {}),
      ...(examples.length ? { examples: examples.map((c): [C] => [c]) } : {}),
    })
  } finally {
    for (const p of pipelines.values()) await p.pipeline.dispose()
    if (!settings.backend) await backend.dispose?.()
  }
}

/** Fails unless the instance lowers for these options (a host round trip is no lowering). */
function requireLowering(plugin: Plugin, instance: Lowerable, opts: unknown, model: ModelShape, placement: PlacementMap, slotsIn: number): void {
  if (!instance.lower || !instance.lower(lowerContext(model, placement, slotsIn))) {
    fail(plugin, `has no GPU lowering for options ${JSON.stringify(opts)} (E=${model.experts}, k=${model.topK}, devices=${placement.devices})`)
  }
}

const describeCase = (r: { tokens: number; experts: number; topK: number; sourceDevice?: Int32Array; decode?: boolean }, devices: number) =>
  `T=${r.tokens} E=${r.experts} k=${r.topK} devices=${devices}${r.sourceDevice ? ' with sourceDevice' : ''}${r.decode ? ' decode' : ''}`

/**
 * Runs the policy's lowering on a WebGPU device against its host `apply` on generated
 * routings; throws a ConformanceError naming the first difference (with the fast-check seed
 * to replay it). Configurations whose `lower()` returns null (host round trip) are reported
 * as a failure unless the case is one the plugin documents as host-only: pass
 * `routings` that stay inside the lowered range. Dropped and moved pairs are compared as sets
 * (the order a list reports them in is no decision; which expert a pair moved to is).
 */
export async function checkLowering(plugin: Plugin<'policy'>, options: LoweringOptions, settings: LoweringSettings = {}): Promise<void> {
  const tol = settings.tolerance ?? 1e-6
  const placementOf = settings.placement ?? contiguousPlacement
  const registry = createRegistry([plugin])
  await runOnDevice(settings, routingCase({ maxTokens: 40, ...settings.routings }), async (c: RoutingCase, pipelineFor) => {
    const r = c.routing
    const model = modelOf(r)
    const placement = placementOf(model.experts, c.devices)
    const opts = optionsFor(options, model, c.seed)
    const policy = registry.create('policy', plugin.meta.name, opts, { model, devices: c.devices, seed: c.seed, placement }) as RoutingPolicy
    const host: PolicyOutcome = policy.apply(r, { placement, batchId: c.batchId, random: mulberry32(mixSeed(c.seed, c.batchId, 0)) })
    const { pipeline, give } = await pipelineFor(caseKey(model, c.devices, c.seed), (router) => {
      requireLowering(plugin, policy, opts, model, placement, model.topK)
      const dispatcher = exactSizeDispatcher.create({}, { model, devices: c.devices, seed: c.seed }) as Dispatcher
      return { model, placement, seed: c.seed, router, policies: [policy], dispatcher }
    })
    if (pipeline.stages[1]?.where !== 'device') fail(plugin, 'the device pipeline ran the policy on the host: lower() returned no stage')
    give(r)
    const res = await pipeline.forward(
      { id: c.batchId, tokens: r.tokens, scores: r.scores, ...(r.sourceDevice ? { sourceDevice: r.sourceDevice } : {}), ...(r.decode ? { decode: true } : {}) },
      { detail: 'full', output: 'norm' },
    )
    const d = res.detail!
    const where = describeCase(r, c.devices)
    comparePairs(plugin, pairsOf(host.routing), pairsOf(d.routing), tol, `routing (${where})`)
    const key2 = (x: { token: number; expert: number; reason?: string }) => `${x.token}:${x.expert}:${x.reason ?? ''}`
    const hd = host.dropped.map(key2).sort()
    const gd = d.dropped.filter((x) => x.policy === plugin.meta.name).map(key2).sort()
    if (hd.join() !== gd.join()) fail(plugin, `dropped pairs differ on ${where}: host [${hd.join(' ')}], device [${gd.join(' ')}]`)
    const hr = (host.rerouted ?? []).map((x) => `${x.token}:${x.from}>${x.to}`).sort()
    const gr = d.rerouted.filter((x) => x.policy === plugin.meta.name).map((x) => `${x.token}:${x.from}>${x.to}`).sort()
    if (hr.join() !== gr.join()) fail(plugin, `moved pairs differ on ${where}: host [${hr.join(' ')}], device [${gr.join(' ')}]`)
    const t = res.counts.policies[0]
    const expect = { dropped: host.dropped.length, rerouted: host.rerouted?.length ?? 0, added: host.added?.length ?? 0, capacity: host.capacity ?? null, skipped: host.skipped ?? null }
    const got = { dropped: t.dropped, rerouted: t.rerouted, added: t.added, capacity: t.capacity, skipped: t.skipped ?? null }
    if (JSON.stringify(expect) !== JSON.stringify(got)) fail(plugin, `telemetry differs on ${where}: host ${JSON.stringify(expect)}, device ${JSON.stringify(got)}`)
  })
}

/**
 * Runs a router's lowering on a WebGPU device against its host `route` on generated gate
 * logits (sometimes handed over as probabilities instead): a pipeline with the router and no
 * policies. The gate probabilities the device writes must be within the tolerance of the
 * host's (the device's softmax is f32, the host's accumulates in f64), and the device's
 * slots (expert per slot, in order) and weights must be those of the host router run on the
 * device's probabilities — so an ulp of softmax difference cannot flip a near-tie on one side
 * only. `options` may be a function of the generated model and case seed (e.g. C2R's
 * collaborator lists, which depend on E).
 * @example
 * it('lowers exactly', () => checkRouterLowering(myRouter, (model) => ({ width: model.experts }), { runs: 40 }), 120_000)
 */
export async function checkRouterLowering(plugin: Plugin<'router'>, options: LoweringOptions, settings: LoweringSettings = {}): Promise<void> {
  const tol = settings.tolerance ?? 1e-6
  const placementOf = settings.placement ?? contiguousPlacement
  const registry = createRegistry([plugin])
  const cases = fc.tuple(routerInputCase({ maxTokens: 40, ...settings.routings }), fc.boolean())
  await runOnDevice(settings, cases, async ([c, asScores]: [RouterInputCase, boolean], pipelineFor) => {
    const model = modelOf(c)
    const placement = placementOf(model.experts, c.devices)
    const opts = optionsFor(options, model, c.seed)
    const router = registry.create('router', plugin.meta.name, opts, { model, devices: c.devices, seed: c.seed, placement }) as Router
    const { pipeline } = await pipelineFor(caseKey(model, c.devices, c.seed), () => {
      requireLowering(plugin, router, opts, model, placement, 0)
      const dispatcher = exactSizeDispatcher.create({}, { model, devices: c.devices, seed: c.seed }) as Dispatcher
      return { model, placement, seed: c.seed, router, policies: [], dispatcher }
    })
    if (pipeline.stages[0]?.where !== 'device') fail(plugin, 'the device pipeline ran the router on the host: lower() returned no stage')
    const gate = asScores ? { scores: softmaxRows(c.logits, c.tokens, c.experts) } : { logits: c.logits }
    const extra = { ...(c.sourceDevice ? { sourceDevice: c.sourceDevice } : {}), ...(c.decode ? { decode: true } : {}) }
    const input: RouterInput = { tokens: c.tokens, experts: c.experts, ...gate, ...extra }
    const res = await pipeline.forward({ id: c.batchId, ...gate, tokens: c.tokens, ...extra }, { detail: 'full', output: 'norm' })
    const device = res.detail!.original
    const where = `${describeCase({ ...c, ...extra }, c.devices)}${asScores ? ' from probabilities' : ' from logits'}`
    const host = router.route(input)
    for (let i = 0; i < host.scores.length; i++) {
      if (Math.abs(host.scores[i] - device.scores[i]) > tol * Math.max(1, Math.abs(host.scores[i]))) {
        fail(plugin, `gate probability (token ${Math.floor(i / c.experts)}, expert ${i % c.experts}) differs on ${where}: host ${host.scores[i]}, device ${device.scores[i]}`)
      }
    }
    const ref = router.route({ tokens: c.tokens, experts: c.experts, scores: device.scores, ...extra })
    if (ref.slots !== device.slots) fail(plugin, `writes ${device.slots} slots per token on ${where}, the host ${ref.slots}`)
    for (let t = 0; t < c.tokens; t++) {
      const o = t * ref.slots
      const hs = Array.from(ref.expertIds.subarray(o, o + ref.slots))
      const ds = Array.from(device.expertIds.subarray(o, o + ref.slots))
      if (hs.join() !== ds.join()) fail(plugin, `slots of token ${t} differ on ${where}: host [${hs.join(' ')}], device [${ds.join(' ')}]`)
      for (let j = 0; j < ref.slots; j++) {
        const [hw, dw] = [ref.weights[o + j], device.weights[o + j]]
        if (Math.abs(hw - dw) > tol * Math.max(1, Math.abs(hw))) fail(plugin, `weight of token ${t} slot ${j} (expert ${hs[j]}) differs on ${where}: host ${hw}, device ${dw}`)
      }
    }
  })
}

/**
 * Runs a dispatcher's lowering (a grouping stage the backend's kernels run) on a WebGPU device
 * against its host `dispatch` on generated routings (by default some with empty slots, as
 * policies leave them): the same plan — mode, offsets, counts, rows (token and weight, padding
 * rows included), capacity, padding — the same overflow drops (token, expert, weight, reason),
 * and the same dispatch telemetry (slots computed, padding, capacity, bytes crossing devices).
 * @example
 * it('lowers exactly', () => checkDispatcherLowering(myDispatcher, { capacityFactor: 1 }), 120_000)
 */
export async function checkDispatcherLowering(plugin: Plugin<'dispatcher'>, options: LoweringOptions, settings: LoweringSettings = {}): Promise<void> {
  const tol = settings.tolerance ?? 1e-6
  const placementOf = settings.placement ?? contiguousPlacement
  const registry = createRegistry([plugin])
  await runOnDevice(settings, routingCase({ maxTokens: 40, holes: true, ...settings.routings }), async (c: RoutingCase, pipelineFor) => {
    const r = c.routing
    const model = modelOf(r)
    const placement = placementOf(model.experts, c.devices)
    const opts = optionsFor(options, model, c.seed)
    const dispatcher = registry.create('dispatcher', plugin.meta.name, opts, { model, devices: c.devices, seed: c.seed, placement }) as Dispatcher
    const { pipeline, give } = await pipelineFor(caseKey(model, c.devices, c.seed), (router) => {
      requireLowering(plugin, dispatcher, opts, model, placement, model.topK)
      return { model, placement, seed: c.seed, router, policies: [], dispatcher }
    })
    if (pipeline.stages[1]?.where !== 'device') fail(plugin, 'the device pipeline ran the dispatcher on the host: lower() returned no stage')
    give(r)
    const host: DispatchPlan = dispatcher.dispatch(r, { placement, bytesPerToken: HIDDEN * ACTIVATION_BYTES })
    const res = await pipeline.forward(
      { id: c.batchId, tokens: r.tokens, scores: r.scores, ...(r.sourceDevice ? { sourceDevice: r.sourceDevice } : {}), ...(r.decode ? { decode: true } : {}) },
      { detail: 'full', output: 'norm' },
    )
    const d = res.detail!
    const g = d.plan
    const where = describeCase(r, c.devices)
    const same = (what: string, h: unknown, x: unknown) => {
      if (JSON.stringify(h) !== JSON.stringify(x)) fail(plugin, `${what} differs on ${where}: host ${JSON.stringify(h)}, device ${JSON.stringify(x)}`)
    }
    same('mode', host.mode, g.mode)
    same('offsets', Array.from(host.offsets), Array.from(g.offsets))
    same('counts', Array.from(host.counts), Array.from(g.counts))
    same('capacity', host.capacity, g.capacity)
    same('paddingRows', host.paddingRows, g.paddingRows)
    same('rowToken', Array.from(host.rowToken), Array.from(g.rowToken))
    host.rowWeight.forEach((w, i) => {
      if (Math.abs(w - g.rowWeight[i]) > tol * Math.max(1, Math.abs(w))) fail(plugin, `rowWeight of row ${i} differs on ${where}: host ${w}, device ${g.rowWeight[i]}`)
    })
    const drop = (x: P & { reason: string }) => `${x.token}:${x.expert}:${x.reason}:${x.weight}`
    same('overflow (dropped pairs)', host.dropped.map(drop).sort(), d.dropped.filter((x) => x.policy === plugin.meta.name).map(drop).sort())
    const h = { mode: host.mode, slotsComputed: host.rowToken.length, paddingRows: host.paddingRows, capacity: host.capacity, bytesCrossDevice: host.traffic.bytesCrossDevice }
    const x = res.counts.dispatch
    same('dispatch telemetry', h, { mode: x.mode, slotsComputed: x.slotsComputed, paddingRows: x.paddingRows, capacity: x.capacity, bytesCrossDevice: x.bytesCrossDevice })
  })
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

async function defaultBackend(): Promise<Backend> {
  let mod: { createWebGpuBackend(o?: object): { pipeline(spec: never): Promise<DevicePipeline>; dispose(): Promise<void> } }
  try {
    // An optional peer that itself tests with the testkit: imported by a name the compiler does not
    // resolve, so the testkit builds (types included) before the backend without a dependency cycle.
    const backendPackage: string = '@moe-route/backend-webgpu'
    mod = (await import(backendPackage)) as never
  } catch (cause) {
    throw new ConformanceError('checkLowering', `needs @moe-route/backend-webgpu (npm install -D @moe-route/backend-webgpu): ${(cause as Error).message}`)
  }
  return mod.createWebGpuBackend({ weightsDtype: 'f32' })
}
