/**
 * The MoE layer orchestrator: router → policies → dispatcher → expert store → backend.
 * Resolved from a container; every constructor parameter carries an explicit @inject token.
 */
import { Backend, LayerWeightSource, type DevicePipeline, type PipelineResult, type WeightSource } from '../backend/backend.js'
import { seededLayerWeights } from '../backend/seeded-weights.js'
import { Dispatcher } from '../dispatcher/dispatcher.js'
import { ErrorCodes, MoeError, isMoeError } from '../errors.js'
import { inject, injectable } from '../inject.js'
import { PlacementMap } from '../placement/placement.js'
import { checkPlanOutput, checkRoutingOutput } from '../plugin/output.js'
import { callPlugin, pluginError } from '../plugin/registry.js'
import { RoutingPolicy, type PolicyOutcome } from '../policy/policy.js'
import { assertFinite, assertLength, assertScores } from '../routing/routing.js'
import { l2Norm, pushAll } from '../util/reduce.js'
import { Router } from '../router/router.js'
import { ExpertStore } from '../store/expert-store.js'
import { computeTelemetry, telemetryFromCounts } from '../telemetry/telemetry.js'
import { LayerWeights, type BatchTimings, type DispatchPlan, type DroppedPair, type ForwardOptions, type LayerResult, type LayerSummary, type ReroutedPair, type Routing, type StageTiming, type StoreTelemetry, type TokenBatch } from '../types.js'
import { mixSeed, mulberry32 } from '../util/rng.js'
import { ResolvedConfig } from '../config/validate.js'


/** The routing part of a batch's result (no layer output). */
export type RouteResult = Omit<LayerResult, 'output'>

const now = () => performance.now()

@injectable()
export class MoeEngine {
  constructor(
    @inject(ResolvedConfig) readonly config: ResolvedConfig,
    @inject(Router) readonly router: Router,
    @inject(RoutingPolicy) readonly policies: readonly RoutingPolicy[],
    @inject(Dispatcher) readonly dispatcher: Dispatcher,
    @inject(PlacementMap) readonly placement: PlacementMap,
    @inject(Backend, { isOptional: true }) readonly backend?: Backend,
    @inject(ExpertStore, { isOptional: true }) readonly store?: ExpertStore,
    @inject(LayerWeights, { isOptional: true }) weights?: LayerWeights,
    @inject(LayerWeightSource, { isOptional: true }) readonly weightSource?: WeightSource,
  ) {
    this.#weights = weights
  }

  #weights: LayerWeights | undefined
  #hostWeights: Promise<LayerWeights> | null = null
  #pipeline: Promise<DevicePipeline> | null = null

  /** Host layer weights, when the engine has them (given, or materialised by the host path). */
  get weights(): LayerWeights | undefined {
    return this.#weights
  }

  /** True when batches with hidden states run as one device pipeline (a GPU backend). */
  get usesDevicePipeline(): boolean {
    return typeof this.backend?.pipeline === 'function' && (this.#weights !== undefined || this.weightSource !== undefined)
  }

  /**
   * Builds what the first batch would otherwise wait for: the device pipeline (weights on the
   * device, every stage lowered and compiled) or the host weights. Resolves to where each
   * stage runs (empty on a host backend).
   */
  async ready(): Promise<DevicePipeline['stages']> {
    if (this.usesDevicePipeline) return (await this.#devicePipeline()).stages
    if (this.weightSource) await this.#ensureHostWeights()
    return []
  }

  /**
   * The device pipeline that batches with hidden states run through on a GPU backend (built on
   * first use: weights on the device, every stage compiled), or null on a host backend.
   */
  async pipeline(): Promise<DevicePipeline | null> {
    return this.usesDevicePipeline ? this.#devicePipeline() : null
  }

  #devicePipeline(): Promise<DevicePipeline> {
    this.#pipeline ??= (async () => {
      const source: WeightSource = this.#weights ? { kind: 'host', weights: this.#weights } : this.weightSource!
      try {
        return await this.backend!.pipeline!({
          model: this.config.model,
          placement: this.placement,
          seed: this.config.seed,
          router: this.router,
          policies: this.policies,
          dispatcher: this.dispatcher,
          ...(this.store ? { store: this.store } : {}),
          weights: source,
          activationBytes: this.config.activationBytes,
        })
      } catch (cause) {
        this.#pipeline = null
        throw pluginError(this.backend!.name, 'pipeline', cause)
      }
    })()
    return this.#pipeline
  }

  async #ensureHostWeights(): Promise<LayerWeights | undefined> {
    if (this.#weights) return this.#weights
    const src = this.weightSource
    if (!src) return undefined
    this.#hostWeights ??= (async () => {
      if (src.kind === 'host') return src.weights
      if (src.kind === 'seeded') return seededLayerWeights(this.config.model, src.seed, src.std, src.routerStd ?? src.std)
      if (!this.backend?.loadWeights) {
        throw new MoeError(ErrorCodes.BACKEND_UNAVAILABLE, `backend ${this.backend?.name ?? '(none)'} cannot load weights from ${src.file}`, { path: '/weights/file' })
      }
      return this.backend.loadWeights(src, this.config.model)
    })()
    this.#weights = await this.#hostWeights
    return this.#weights
  }

  /** Routes a batch given logits or scores (no backend needed). Synchronous. */
  route(batch: TokenBatch): RouteResult {
    this.#checkBatch(batch, false)
    const timings = emptyTimings()
    const t0 = now()
    const r = this.#route(batch, batch.logits, timings)
    timings.totalMs = now() - t0
    return { ...r, telemetry: computeTelemetry({ ...r.telemetryInput, timings }) }
  }

  /**
   * Runs the layer on one batch: gate (unless the batch carries logits/scores), routing,
   * policies, dispatch, expert store, experts and combine. Needs a backend and weights when
   * the batch has hidden states; a routing-only batch returns no output.
   */
  forward(batch: TokenBatch): Promise<LayerResult>
  forward(batch: TokenBatch, options: ForwardOptions & { readonly detail: 'telemetry' }): Promise<LayerSummary>
  forward(batch: TokenBatch, options?: ForwardOptions): Promise<LayerResult>
  async forward(batch: TokenBatch, options: ForwardOptions = {}): Promise<LayerResult | LayerSummary> {
    this.#checkBatch(batch, true)
    let lost: string | undefined
    if ((batch.hidden || batch.deviceHidden) && this.usesDevicePipeline) {
      try {
        return await this.#forwardDevice(batch, options)
      } catch (e) {
        // A lost device loses the batch's device state; with its hidden states on the host the
        // batch is finished on the host path (the backend re-acquires a device, or computes on
        // the CPU), the pipeline is rebuilt for the next batch.
        if (!(isMoeError(e) && e.code === ErrorCodes.BACKEND_DEVICE_LOST && e.details.fallback !== false && batch.hidden)) throw e
        this.#pipeline = null
        lost = e.message
      }
    }
    if (batch.deviceHidden) {
      throw new MoeError(ErrorCodes.INPUT_INVALID, `batch ${batch.id} has deviceHidden but the backend ${this.backend?.name ?? '(none)'} runs no device pipeline`, { record: batch.id })
    }
    const timings = emptyTimings()
    const t0 = now()
    let logits = batch.logits
    const { hidden } = batch
    if (hidden) await this.#ensureHostWeights()
    if (hidden && !this.weights) {
      throw new MoeError(ErrorCodes.BACKEND_UNAVAILABLE, 'batch has hidden states but the engine has no layer weights')
    }
    if (hidden && !this.backend) {
      throw new MoeError(ErrorCodes.BACKEND_UNAVAILABLE, 'batch has hidden states but no backend is registered')
    }
    if (!logits && !batch.scores) {
      if (!hidden) throw new MoeError(ErrorCodes.INPUT_INVALID, `batch ${batch.id} has neither hidden states, logits nor scores`, { record: batch.id })
      const g = now()
      logits = await this.#backendCall('gate', () => this.backend!.gate(hidden, batch.tokens, this.weights!))
      timings.gateMs = now() - g
    }
    const r = this.#route(batch, logits, timings)
    let store: StoreTelemetry | undefined
    if (this.store) {
      const s = now()
      const active: number[] = []
      r.plan.counts.forEach((c, e) => c > 0 && active.push(e))
      const st = this.store
      store = await this.#pluginCallAsync(st.name, 'prepare', () => st.prepare({ batchId: batch.id, active, counts: r.plan.counts }))
      timings.storeMs = now() - s
    }
    let output: Float32Array | undefined
    let fallback: LayerResult['telemetry']['fallback']
    if (hidden) {
      const x = now()
      const res = await this.#backendCall('experts', () => this.backend!.experts(hidden, r.plan, this.weights!))
      timings.expertsMs = now() - x
      output = res.output
      if (res.kernels) timings.kernels = res.kernels
      fallback = res.fallback
    }
    timings.totalMs = now() - t0
    if (lost !== undefined) fallback = { from: `${this.backend!.name} pipeline`, to: fallback?.to ?? `${this.backend!.name} host path`, reason: lost }
    const telemetry = computeTelemetry({
      ...r.telemetryInput,
      timings,
      ...(store ? { store } : {}),
      ...(this.backend && hidden ? { backend: this.backend.name } : {}),
      ...(fallback ? { fallback } : {}),
    })
    const mode = options.output ?? 'host'
    const outputNorm = output ? l2Norm(output) : undefined
    return {
      batchId: r.batchId,
      tokens: r.tokens,
      routing: r.routing,
      plan: r.plan,
      dropped: r.dropped,
      rerouted: r.rerouted,
      ...(output && mode !== 'norm' ? { output } : {}),
      ...(outputNorm !== undefined ? { outputNorm } : {}),
      telemetry,
    }
  }

  /** A batch through the device pipeline. */
  async #forwardDevice(batch: TokenBatch, options: ForwardOptions): Promise<LayerResult | LayerSummary> {
    const t0 = now()
    const pipeline = await this.#devicePipeline()
    let res: PipelineResult
    try {
      res = await pipeline.forward(batch, options)
    } catch (cause) {
      throw pluginError(this.backend!.name, 'forward', cause)
    }
    const timings = stageTimings(res.stages)
    if (res.kernels) timings.kernels = res.kernels
    timings.totalMs = now() - t0
    const telemetry = telemetryFromCounts(batch.id, res.counts, this.placement, timings, {
      ...(res.store ? { store: res.store } : {}),
      backend: this.backend!.name,
      ...(res.fallback ? { fallback: res.fallback } : {}),
      hostRoundTrips: res.hostRoundTrips,
    })
    const summary: LayerSummary = {
      batchId: batch.id,
      tokens: batch.tokens,
      ...(res.output ? { output: res.output } : {}),
      ...(res.outputNorm !== undefined ? { outputNorm: res.outputNorm } : {}),
      ...(res.deviceOutput ? { deviceOutput: res.deviceOutput } : {}),
      telemetry,
    }
    if (!res.detail) return summary
    const d = res.detail
    return { ...summary, routing: d.routing, plan: d.plan, dropped: d.dropped, rerouted: d.rerouted }
  }

  /** Disposes the device pipeline, policies, store and backend. */
  async dispose(): Promise<void> {
    const p = this.#pipeline ? await this.#pipeline.catch(() => null) : null
    this.#pipeline = null
    await p?.dispose()
    for (const p of this.policies) p.dispose?.()
    await this.store?.dispose?.()
    await this.backend?.dispose?.()
  }

  #route(batch: TokenBatch, logits: Float32Array | undefined, timings: BatchTimings) {
    const { experts } = this.config.model
    const r0 = now()
    const original = checkRoutingOutput(
      callPlugin(this.router.name, 'route', () =>
        this.router.route({
          tokens: batch.tokens,
          experts,
          ...(batch.scores && !logits ? { scores: batch.scores } : { logits }),
          ...(batch.sourceDevice ? { sourceDevice: batch.sourceDevice } : {}),
          ...(batch.decode ? { decode: true } : {}),
        }),
      ),
      batch.tokens,
      experts,
      this.router.name,
      'route',
    )
    timings.routeMs = now() - r0
    const p0 = now()
    let routing: Routing = original
    const dropped: DroppedPair[] = []
    const rerouted: ReroutedPair[] = []
    const outcomes: { policy: string; outcome: PolicyOutcome }[] = []
    this.policies.forEach((policy, i) => {
      const randomSeed = mixSeed(this.config.seed, batch.id, i)
      const random = mulberry32(randomSeed)
      const outcome = callPlugin(policy.name, 'apply', () => policy.apply(routing, { placement: this.placement, batchId: batch.id, random, randomSeed }))
      if (!outcome || !outcome.routing) {
        throw new MoeError(ErrorCodes.PLUGIN_FAILED, `plugin ${policy.name} returned no routing from apply`, { plugin: policy.name, hook: 'apply' })
      }
      checkRoutingOutput(outcome.routing, batch.tokens, experts, policy.name, 'apply')
      if (!Array.isArray(outcome.dropped)) throw new MoeError(ErrorCodes.PLUGIN_FAILED, `plugin ${policy.name} returned no dropped list from apply`, { plugin: policy.name, hook: 'apply' })
      outcomes.push({ policy: policy.name, outcome })
      routing = outcome.routing
      pushAll(dropped, outcome.dropped)
      if (outcome.rerouted) pushAll(rerouted, outcome.rerouted)
    })
    timings.policiesMs = now() - p0
    const d0 = now()
    const bytesPerToken = this.config.model.hidden * this.config.activationBytes
    const plan: DispatchPlan = checkPlanOutput(
      callPlugin(this.dispatcher.name, 'dispatch', () => this.dispatcher.dispatch(routing, { placement: this.placement, bytesPerToken })),
      batch.tokens,
      experts,
      this.dispatcher.name,
    )
    timings.dispatchMs = now() - d0
    pushAll(dropped, plan.dropped)
    return {
      batchId: batch.id,
      tokens: batch.tokens,
      routing,
      plan,
      dropped,
      rerouted,
      telemetryInput: { batchId: batch.id, original, final: routing, plan, outcomes, placement: this.placement },
    }
  }

  #checkBatch(batch: TokenBatch, allowHidden: boolean): void {
    const { experts, hidden } = this.config.model
    if (!batch || typeof batch !== 'object') throw new MoeError(ErrorCodes.INPUT_INVALID, 'a batch must be an object')
    if (!Number.isInteger(batch.tokens) || batch.tokens < 0) {
      throw new MoeError(ErrorCodes.INPUT_INVALID, `batch ${batch.id}: tokens must be a non-negative integer, got ${batch.tokens}`, { record: batch.id })
    }
    if (batch.logits) {
      assertLength(batch.logits, batch.tokens * experts, `batch ${batch.id} logits`)
      assertFinite(batch.logits, experts, `batch ${batch.id} logits`)
    }
    if (batch.scores) {
      assertLength(batch.scores, batch.tokens * experts, `batch ${batch.id} scores`)
      assertScores(batch.scores, experts, `batch ${batch.id} scores`)
    }
    if (batch.sourceDevice) {
      assertLength(batch.sourceDevice, batch.tokens, `batch ${batch.id} sourceDevice`)
      for (const d of batch.sourceDevice) {
        if (d < 0 || d >= this.placement.devices) {
          throw new MoeError(ErrorCodes.INPUT_INVALID, `batch ${batch.id}: sourceDevice ${d} is outside 0..${this.placement.devices - 1}`, { record: batch.id })
        }
      }
    }
    if (batch.hidden) {
      if (!allowHidden) throw new MoeError(ErrorCodes.INPUT_INVALID, 'route() takes logits or scores; use forward() for hidden states')
      assertLength(batch.hidden, batch.tokens * hidden, `batch ${batch.id} hidden`)
      assertFinite(batch.hidden, hidden, `batch ${batch.id} hidden`)
    } else if (batch.deviceHidden) {
      if (!allowHidden) throw new MoeError(ErrorCodes.INPUT_INVALID, 'route() takes logits or scores; use forward() for hidden states')
    } else if (!batch.logits && !batch.scores) {
      throw new MoeError(ErrorCodes.INPUT_INVALID, `batch ${batch.id} has neither hidden states, logits nor scores`, { record: batch.id })
    }
  }

  async #backendCall<T>(hook: string, fn: () => Promise<T>): Promise<T> {
    return this.#pluginCallAsync(this.backend!.name, hook, fn)
  }

  async #pluginCallAsync<T>(plugin: string, hook: string, fn: () => T | Promise<T>): Promise<T> {
    try {
      return await fn()
    } catch (cause) {
      throw pluginError(plugin, hook, cause)
    }
  }
}

/** BatchTimings of a device pipeline from its per-stage times (device ms when profiled, else 0). */
function stageTimings(stages: StageTiming[]): BatchTimings {
  const t = emptyTimings()
  for (const s of stages) {
    const ms = s.ms ?? 0
    if (s.stage === 'gate') t.gateMs += ms
    else if (s.stage.startsWith('router:')) t.routeMs += ms
    else if (s.stage.startsWith('policy:')) t.policiesMs += ms
    else if (s.stage.startsWith('dispatch:')) t.dispatchMs += ms
    else if (s.stage.startsWith('store:')) t.storeMs += ms
    else if (s.stage === 'experts') t.expertsMs += ms
  }
  t.stages = stages
  return t
}

function emptyTimings(): BatchTimings {
  return { gateMs: 0, routeMs: 0, policiesMs: 0, dispatchMs: 0, storeMs: 0, expertsMs: 0, totalMs: 0 }
}
