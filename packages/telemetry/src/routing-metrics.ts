/**
 * The bridge: batch telemetry in, Prometheus and OpenTelemetry metrics out. Subscribes to a
 * TokenStream's `telemetry$` (or any source of BatchTelemetry) and keeps the metrics of
 * {@link METRICS} current, one `record()` per batch. O(E + policies + kernels) per batch.
 */
import { metrics as otelMetrics, type Meter } from '@opentelemetry/api'
import { Registry } from 'prom-client'
import { balancedness, type BatchTelemetry, type DropCount } from '@moe-route/core'
import { Instrument } from './instruments.js'
import { LabelLimiter, OTHER_LABEL_VALUE } from './label-limiter.js'
import { METRICS, type HistogramId, type MetricId } from './metric-specs.js'
import { resolveOptions, type RoutingMetricsOptions } from './options.js'
// Named imports let the bundler inline these two fields only, not the whole package.json.
import { name as PACKAGE_NAME, version as PACKAGE_VERSION } from '../package.json'

/** Anything with a `subscribe` for batch telemetry: an RxJS Observable, `TokenStream.telemetry$`. */
export interface TelemetrySubscribable {
  subscribe(observer: { next: (t: BatchTelemetry) => void; error?: (e: unknown) => void }): { unsubscribe(): void }
}

/** A source to observe: a TokenStream (its `telemetry$`) or the telemetry observable itself. */
export type TelemetrySource = TelemetrySubscribable | { readonly telemetry$: TelemetrySubscribable }

/** The stages of {@link BatchTimings} reported as `stage` label values (ms fields, in order). */
const STAGES = [
  ['gate', 'gateMs'],
  ['route', 'routeMs'],
  ['policies', 'policiesMs'],
  ['dispatch', 'dispatchMs'],
  ['store', 'storeMs'],
  ['experts', 'expertsMs'],
  ['total', 'totalMs'],
] as const

/**
 * Routing metrics for one MoE layer, in a prom-client Registry and an OpenTelemetry Meter.
 * Lifetime: instruments live as long as the registry and meter; `observe()` returns the
 * subscription to end.
 * @example
 * const metrics = new RoutingMetrics()            // new Registry + the global OTel meter
 * const subscription = metrics.observe(stream)     // a TokenStream
 * // … serveMetrics({ port: 9464, registry: metrics.registry }) or your own /metrics route
 * subscription.unsubscribe()
 */
export class RoutingMetrics {
  /** The Prometheus registry written to (undefined with `registry: false`). */
  readonly registry: Registry | undefined
  /** The OpenTelemetry meter written to (undefined with `meter: false`). */
  readonly meter: Meter | undefined
  readonly #i: { [K in MetricId]?: Instrument }
  readonly #labels: LabelLimiter
  readonly #perExpert: boolean
  readonly #maxExperts: number
  readonly #expertLabels: string[] = []

  constructor(options: RoutingMetricsOptions = {}) {
    const o = resolveOptions(options)
    this.registry = o.registry === false ? undefined : (o.registry ?? new Registry())
    this.meter = o.meter === false ? undefined : (o.meter ?? otelMetrics.getMeter(PACKAGE_NAME, PACKAGE_VERSION))
    this.#labels = new LabelLimiter(o.maxLabelValues)
    this.#perExpert = o.perExpertLoad
    this.#maxExperts = o.maxExperts
    const target = { ...(this.registry ? { registry: this.registry } : {}), ...(this.meter ? { meter: this.meter } : {}), constLabels: o.constLabels }
    const instruments: { [K in MetricId]?: Instrument } = {}
    for (const [id, spec] of Object.entries(METRICS) as [MetricId, (typeof METRICS)[MetricId]][]) {
      if ('optIn' in spec && spec.optIn === 'perExpertLoad' && !o.perExpertLoad) continue
      instruments[id] = new Instrument(spec, target, o.buckets[id as HistogramId])
    }
    this.#i = instruments
  }

  /** Subscribes to a source; every batch it emits is recorded. */
  observe(source: TelemetrySource): { unsubscribe(): void } {
    const subscribable = 'telemetry$' in source ? source.telemetry$ : source
    // A stream's failure is reported by the stream's consumer; metrics keep what they have.
    return subscribable.subscribe({ next: (t) => this.record(t), error: () => {} })
  }

  /** Records one batch. */
  record(t: BatchTelemetry): void {
    const i = this.#i
    const one = (id: MetricId, v: number) => i[id]!.series().record(v)
    one('batches', 1)
    one('tokens', t.tokens)
    one('pairsRouted', t.pairsBefore)
    one('pairsComputed', t.pairsAfter)
    one('pairsDropped', t.droppedPairs)
    one('tokensFullyDropped', t.tokensFullyDropped)
    one('gateMassKept', t.gateMassKept)
    for (const d of t.droppedBy ?? dropsWithoutReasons(t)) {
      i.policyDropped!.series([this.#label('policy', d.policy), this.#label('reason', d.reason)]).record(d.pairs)
    }
    for (const p of t.policies) {
      const policy = this.#label('policy', p.policy)
      i.policyRerouted!.series([policy]).record(p.rerouted)
      i.policyAdded!.series([policy]).record(p.added)
      if (p.capacity !== null && p.capacity !== undefined) i.policyCapacity!.series([policy]).record(p.capacity)
      if (p.skipped) i.policySkipped!.series([policy, this.#label('reason', p.skipped)]).record(1)
      if (p.fallback) this.#fallback(p.fallback.from, p.fallback.to)
    }
    this.#load('routed', t.loadBefore)
    this.#load('computed', t.loadAfter)
    if (t.store) {
      one('cacheHits', t.store.hits)
      one('cacheMisses', t.store.misses)
      one('cacheEvictions', t.store.evictions)
      one('cacheUploaded', t.store.bytesUploaded)
      one('cacheResident', t.store.resident)
    }
    one('crossDevice', t.dispatch.bytesCrossDevice)
    one('paddingRows', t.dispatch.paddingRows)
    if (t.fallback) this.#fallback(t.fallback.from, t.fallback.to)
    this.#hostRoundTrips(t)
    this.#timings(t)
  }

  #label(key: string, value: unknown): string {
    return this.#labels.value(key, value)
  }

  #fallback(from: string, to: string): void {
    this.#i.fallbacks!.series([this.#label('plugin', from), this.#label('plugin', to)]).record(1)
  }

  #load(pairs: 'routed' | 'computed', load: readonly number[]): void {
    const b = balancedness(load)
    this.#i.balancedness!.series([pairs]).record(b)
    this.#i.batchBalancedness!.series([pairs]).record(b)
    let sum = 0
    for (const l of load) sum += l
    const relative = this.#i.relativeLoad!.series([pairs])
    if (sum > 0) {
      const mean = sum / load.length
      for (const l of load) relative.record(l / mean)
    }
    const perExpert = this.#i.expertPairs
    if (perExpert) {
      for (let e = 0; e < load.length; e++) perExpert.series([this.#expertLabel(e), pairs]).record(load[e])
    }
  }

  #expertLabel(e: number): string {
    if (e >= this.#maxExperts) return OTHER_LABEL_VALUE
    return (this.#expertLabels[e] ??= String(e))
  }

  /** Host round trips by plugin (`hostRoundTrips`; absent on host backends: none). */
  #hostRoundTrips(t: BatchTelemetry): void {
    for (const [plugin, n] of Object.entries(t.hostRoundTrips ?? {})) this.#i.hostRoundTrips!.series([this.#label('plugin', plugin)]).record(n)
  }

  #timings(t: BatchTelemetry): void {
    const stage = this.#i.stageDuration!
    const ms = t.timings
    for (const [name, field] of STAGES) {
      // A stage that did not run (no gate: the batch brought logits; no store; no backend) is
      // not observed, so its histogram is not pulled towards 0.
      if (name === 'gate' && !(ms.gateMs > 0)) continue
      if (name === 'store' && !t.store) continue
      if (name === 'experts' && !t.backend) continue
      stage.series([name]).record(ms[field] / 1000)
    }
    for (const st of ms.stages ?? []) {
      if (st.ms === null || st.ms === undefined) continue // not profiled
      this.#i.pipelineStageDuration!.series([this.#label('pipeline_stage', st.stage), st.where === 'device' ? 'device' : 'host']).record(st.ms / 1000)
    }
    if (ms.kernels) {
      for (const [kernel, kms] of Object.entries(ms.kernels)) this.#i.kernelDuration!.series([this.#label('kernel', kernel)]).record(kms / 1000)
    }
  }
}

/** Drops by policy from a core that predates `droppedBy` (reason unknown). */
function dropsWithoutReasons(t: BatchTelemetry): DropCount[] {
  return t.policies.map((p) => ({ policy: p.policy, reason: 'unknown', pairs: p.dropped }))
}
