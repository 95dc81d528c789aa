import { MeterProvider, MetricReader, type ResourceMetrics } from '@opentelemetry/sdk-metrics'
import { PrometheusSerializer } from '@opentelemetry/exporter-prometheus'
import { Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { TelemetryAggregate, TokenStream, balancedness, createMoe, definePolicy, isMoeError, pairsOf, routingFromPairs, type BatchTelemetry } from '@moe-route/core'
import { randomLogits } from '@moe-route/core/testing'
import capacityDrop from '@moe-route/policy-capacity/capacity-drop'
import { METRICS, metricsTable, type MetricSpec } from './metric-specs.js'
import { RoutingMetrics } from './routing-metrics.js'

const model = { experts: 8, topK: 2, hidden: 8, intermediate: 16, normalizeTopK: true }

/** A reader that collects on demand (what an exporter's reader does on its schedule). */
class TestReader extends MetricReader {
  protected override async onShutdown() {}
  protected override async onForceFlush() {}
}

/** prom-client values as { "name{label=value,…}": value } (const labels included). */
async function promValues(registry: Registry): Promise<Record<string, number>> {
  const out: Record<string, number> = {}
  for (const m of await registry.getMetricsAsJSON()) {
    for (const v of m.values as { value: number; labels: Record<string, string | number>; metricName?: string }[]) {
      const labels = Object.entries(v.labels).sort(([a], [b]) => a.localeCompare(b)).map(([k, x]) => `${k}=${x}`).join(',')
      out[`${v.metricName ?? m.name}{${labels}}`] = v.value
    }
  }
  return out
}

/** OTel data points as { "otelName{attr=value,…}": value or histogram sum/count }. */
function otelValues(rm: ResourceMetrics): Record<string, number> {
  const out: Record<string, number> = {}
  for (const sm of rm.scopeMetrics) {
    for (const m of sm.metrics) {
      for (const dp of m.dataPoints as { attributes: Record<string, unknown>; value: number | { sum?: number; count: number } }[]) {
        const labels = Object.entries(dp.attributes).sort(([a], [b]) => a.localeCompare(b)).map(([k, x]) => `${k}=${x}`).join(',')
        if (typeof dp.value === 'number') out[`${m.descriptor.name}{${labels}}`] = dp.value
        else {
          out[`${m.descriptor.name}.sum{${labels}}`] = dp.value.sum ?? NaN
          out[`${m.descriptor.name}.count{${labels}}`] = dp.value.count
        }
      }
    }
  }
  return out
}

/** Runs `batches` batches of skewed logits through capacity drop (γ 1.0) in a TokenStream. */
async function runStream(metrics: RoutingMetrics, batches = 6, tokens = 64) {
  const engine = createMoe({ config: { model, policies: [{ use: 'capacity-drop', options: { capacityFactor: 1.0 } }] }, plugins: [capacityDrop] })
  const stream = new TokenStream(engine, { capacity: 2 })
  const subscription = metrics.observe(stream)
  const agg = new TelemetryAggregate()
  const seen: BatchTelemetry[] = []
  const producer = (async () => {
    for (let b = 0; b < batches; b++) {
      const logits = randomLogits(tokens, model.experts, 100 + b)
      for (let t = 0; t < tokens; t++) logits[t * model.experts] += 1.5 // expert 0 is favoured: capacity drops
      await stream.write({ id: b, tokens, logits })
    }
    stream.end()
  })()
  for await (const r of stream) {
    agg.add(r.telemetry)
    seen.push(r.telemetry)
  }
  await producer
  subscription.unsubscribe()
  return { summary: agg.summary(), seen }
}

/** The Prometheus name the OpenTelemetry Collector gives an OTel instrument. */
function collectorName(m: MetricSpec): string {
  let name = m.otel.replace(/[^a-zA-Z0-9_:]/g, '_').replace(/_+/g, '_')
  const unit = m.unit.replace(/\{[^}]*\}/g, '')
  const word = ({ s: 'seconds', By: 'bytes', '1': m.kind === 'gauge' ? 'ratio' : '' } as Record<string, string>)[unit] ?? unit
  if (word && !name.endsWith(`_${word}`)) name += `_${word}`
  if (m.kind === 'counter') name += '_total'
  return name
}

describe('RoutingMetrics', () => {
  it('counts what the run report counts, on the Prometheus and the OpenTelemetry side alike', async () => {
    const registry = new Registry()
    const reader = new TestReader()
    const meter = new MeterProvider({ readers: [reader] }).getMeter('test')
    const metrics = new RoutingMetrics({ registry, meter })
    const { summary, seen } = await runStream(metrics)
    const p = await promValues(registry)
    expect(summary.droppedPairs).toBeGreaterThan(0)
    expect(p['moe_route_batches_total{}']).toBe(6)
    expect(p['moe_route_tokens_total{}']).toBe(summary.tokens)
    expect(p['moe_route_pairs_routed_total{}']).toBe(summary.pairs)
    expect(p['moe_route_pairs_dropped_total{}']).toBe(summary.droppedPairs)
    expect(p['moe_route_pairs_computed_total{}']).toBe(summary.pairs - summary.droppedPairs + summary.addedPairs)
    expect(p['moe_route_policy_pairs_dropped_total{policy=capacity-drop,reason=capacity}']).toBe(summary.droppedPairs)
    const last = seen.at(-1)!
    expect(p['moe_route_balancedness_ratio{pairs=computed}']).toBeCloseTo(balancedness(last.loadAfter), 12)
    expect(p['moe_route_balancedness_ratio{pairs=routed}']).toBeCloseTo(balancedness(last.loadBefore), 12)
    expect(p['moe_route_batch_balancedness_count{pairs=computed}']).toBe(6)
    expect(p['moe_route_batch_balancedness_sum{pairs=computed}'] / 6).toBeCloseTo(summary.balancedness.after.mean, 12)
    expect(p['moe_route_batch_balancedness_sum{pairs=routed}'] / 6).toBeCloseTo(summary.balancedness.before.mean, 12)
    expect(summary.balancedness.after.mean).toBeGreaterThan(summary.balancedness.before.mean) // capacity drop balances
    expect(p['moe_route_batch_gate_mass_kept_sum{}'] / 6).toBeCloseTo(summary.gateMassKept, 12)
    expect(p['moe_route_policy_capacity{policy=capacity-drop}']).toBe(last.policies[0].capacity)
    expect(p['moe_route_expert_relative_load_count{pairs=routed}']).toBe(6 * model.experts)
    expect(p['moe_route_stage_duration_seconds_count{stage=total}']).toBe(6)
    expect(p['moe_route_stage_duration_seconds_sum{stage=total}']).toBeCloseTo(summary.totalMs / 1000, 9)
    expect(p['moe_route_stage_duration_seconds_count{stage=gate}']).toBeUndefined() // the batches brought logits
    expect(p['moe_route_stage_duration_seconds_count{stage=experts}']).toBeUndefined() // routing only

    const { resourceMetrics } = await reader.collect()
    const o = otelValues(resourceMetrics)
    // Every Prometheus series has its OpenTelemetry twin with the same value.
    const byProm = new Map(Object.values(METRICS as Record<string, MetricSpec>).map((m) => [m.prometheus, m]))
    let compared = 0
    for (const [key, value] of Object.entries(p)) {
      const [, name, labels] = /^([^{]+)\{(.*)\}$/.exec(key)!
      const hist = /^(.*)_(sum|count)$/.exec(name)
      const spec = byProm.get(name) ?? (hist ? byProm.get(hist[1]) : undefined)
      if (!spec) continue // histogram buckets
      const otelKey = spec.kind === 'histogram' ? `${spec.otel}.${hist![2]}{${labels}}` : `${spec.otel}{${labels}}`
      // prom-client shows an unlabelled metric at 0 before its first value; OTel shows nothing.
      const otel = o[otelKey] ?? (labels === '' && value === 0 ? 0 : undefined)
      expect(otel, otelKey).toBeCloseTo(value, 9)
      compared++
    }
    expect(compared).toBeGreaterThan(25)
  })

  it('names every metric by the conventions: OTel name + unit → the Collector\'s Prometheus name', () => {
    for (const m of Object.values(METRICS as Record<string, MetricSpec>)) {
      expect(m.prometheus, m.otel).toBe(collectorName(m))
      expect(m.otel).toMatch(/^moe_route(\.[a-z_]+)+$/)
      expect(m.otel).not.toMatch(/(^|[._])(total|seconds|bytes|ratio)($|[._])/) // units live in `unit`, never in the OTel name
      if (m.kind === 'counter') expect(m.prometheus).toMatch(/_total$/)
      if (m.kind === 'histogram') expect(m.buckets?.length).toBeGreaterThan(3)
    }
    const names = Object.values(METRICS).flatMap((m) => [m.prometheus, m.otel])
    expect(new Set(names).size).toBe(names.length)
  })

  it('matches what @opentelemetry/exporter-prometheus writes for the OTel side, up to the unit suffix it does not add', async () => {
    const reader = new TestReader()
    const metrics = new RoutingMetrics({ registry: false, meter: new MeterProvider({ readers: [reader] }).getMeter('test'), perExpertLoad: true })
    await runStream(metrics, 2, 32)
    const text = new PrometheusSerializer(undefined, false, undefined, true, true).serialize((await reader.collect()).resourceMetrics)
    const families = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map(([, name, type]) => [name, type])
    expect(families.length).toBeGreaterThan(15)
    for (const [name, type] of families) {
      const spec = Object.values(METRICS as Record<string, MetricSpec>).find((m) => m.prometheus.replace(/_(seconds|bytes|ratio)(?=(_total)?$)/, '') === name)
      expect(spec, name).toBeDefined()
      expect(type).toBe(spec!.kind)
    }
  })

  it('keeps label cardinality bounded: past maxLabelValues a new reason reports "other"', () => {
    const registry = new Registry()
    const noisy = definePolicy<Record<string, never>>({
      meta: { name: 'noisy', package: 'test', version: '0.0.0', core: '^0.1.0', schema: { type: 'object' }, defaultOptions: {} },
      create: () => ({
        name: 'noisy',
        apply(routing, ctx) {
          const pairs = pairsOf(routing)
          // A reason per token: a plugin bug that must not become one series per token.
          const dropped = pairs.filter((p) => p.expert === 0).map((p) => ({ ...p, reason: `token-${p.token}-${ctx.batchId}`, policy: 'noisy' }))
          return { routing: routingFromPairs(routing, pairs.filter((p) => p.expert !== 0)), dropped }
        },
      }),
    })
    const engine = createMoe({ config: { model, policies: [{ use: 'noisy' }] }, plugins: [noisy] })
    const metrics = new RoutingMetrics({ registry, meter: false, maxLabelValues: 5 })
    let dropped = 0
    for (let b = 0; b < 4; b++) {
      const logits = randomLogits(64, 8, b)
      for (let t = 0; t < 64; t++) logits[t * 8] += 3
      const r = engine.route({ id: b, tokens: 64, logits })
      dropped += r.telemetry.droppedPairs
      metrics.record(r.telemetry)
    }
    return promValues(registry).then((p) => {
      const series = Object.entries(p).filter(([k]) => k.startsWith('moe_route_policy_pairs_dropped_total'))
      expect(series.length).toBe(6) // 5 reasons + other
      expect(series.reduce((s, [, v]) => s + v, 0)).toBe(dropped)
      expect(p['moe_route_policy_pairs_dropped_total{policy=noisy,reason=other}']).toBe(dropped - 5)
    })
  })

  it('keeps per-expert series opt-in, and labels them with a layer when asked', async () => {
    const off = new Registry()
    await runStream(new RoutingMetrics({ registry: off, meter: false }), 1, 16)
    expect(Object.keys(await promValues(off)).some((k) => k.startsWith('moe_route_expert_pairs_total'))).toBe(false)
    const on = new Registry()
    const { summary } = await runStream(new RoutingMetrics({ registry: on, meter: false, perExpertLoad: true, constLabels: { layer: '7' } }), 3, 16)
    const p = await promValues(on)
    for (let e = 0; e < model.experts; e++) {
      expect(p[`moe_route_expert_pairs_total{expert=${e},layer=7,pairs=routed}`]).toBe(summary.loadBefore[e])
      expect(p[`moe_route_expert_pairs_total{expert=${e},layer=7,pairs=computed}`]).toBe(summary.loadAfter[e])
    }
    expect(p['moe_route_tokens_total{layer=7}']).toBe(summary.tokens)
  })

  it('lets several layers share a registry through constLabels, and refuses a clash', async () => {
    const registry = new Registry()
    const a = new RoutingMetrics({ registry, meter: false, constLabels: { layer: '0' } })
    const b = new RoutingMetrics({ registry, meter: false, constLabels: { layer: '1' } })
    await runStream(a, 1, 16)
    await runStream(b, 2, 16)
    const p = await promValues(registry)
    expect([p['moe_route_batches_total{layer=0}'], p['moe_route_batches_total{layer=1}']]).toEqual([1, 2])
    expect(() => new RoutingMetrics({ registry, meter: false })).toThrow(/already registered as a counter with labels \[layer\]/)
  })

  it('reads host round trips, device-pipeline stage times and fallbacks by plugin', async () => {
    const registry = new Registry()
    const metrics = new RoutingMetrics({ registry, meter: false })
    const engine = createMoe({ config: { model } })
    const base = engine.route({ id: 0, tokens: 8, logits: randomLogits(8, 8, 1) }).telemetry
    metrics.record(base) // no hostRoundTrips field: counts as none
    metrics.record({ ...base, backend: 'webgpu', hostRoundTrips: { webgpu: 1 }, fallback: { from: 'webgpu', to: 'cpu', reason: 'device lost' } })
    metrics.record({
      ...base,
      hostRoundTrips: { 'min-weight': 2 },
      timings: { ...base.timings, stages: [{ stage: 'policy:min-weight', where: 'host', ms: 0.5 }, { stage: 'experts', where: 'device', ms: 2 }, { stage: 'gate', where: 'device', ms: null }] },
    } as BatchTelemetry)
    const p = await promValues(registry)
    expect(p['moe_route_host_round_trips_total{plugin=webgpu}']).toBe(1)
    expect(p['moe_route_host_round_trips_total{plugin=min-weight}']).toBe(2)
    expect(Object.keys(p).filter((k) => k.startsWith('moe_route_host_round_trips_total'))).toHaveLength(2)
    expect(p['moe_route_fallbacks_total{fallback=cpu,plugin=webgpu}']).toBe(1)
    expect(p['moe_route_batches_total{}']).toBe(3)
    expect(p['moe_route_pipeline_stage_duration_seconds_sum{stage=policy:min-weight,where=host}']).toBeCloseTo(0.0005, 12)
    expect(p['moe_route_pipeline_stage_duration_seconds_sum{stage=experts,where=device}']).toBeCloseTo(0.002, 12)
    expect(p['moe_route_pipeline_stage_duration_seconds_count{stage=gate,where=device}']).toBeUndefined() // not profiled
  })

  it('ignores values a counter cannot take (negative, NaN) instead of throwing in the stream', async () => {
    const registry = new Registry()
    const metrics = new RoutingMetrics({ registry, meter: false })
    const t = createMoe({ config: { model } }).route({ id: 0, tokens: 8, logits: randomLogits(8, 8, 1) }).telemetry
    expect(() => metrics.record({ ...t, tokens: -3, droppedPairs: Number.NaN, gateMassKept: Number.POSITIVE_INFINITY } as BatchTelemetry)).not.toThrow()
    const p = await promValues(registry)
    expect(p['moe_route_tokens_total{}']).toBe(0)
    expect(p['moe_route_batch_gate_mass_kept_count{}']).toBe(0)
  })

  it('rejects bad options with MOE_ROUTE_ERR_TELEMETRY_OPTIONS_INVALID naming the option', () => {
    const cases: [object, RegExp][] = [
      [{ buckets: { stageDuration: [0.1, 0.05] } }, /buckets\.stageDuration\[1\]: must be greater/],
      [{ buckets: { tokens: [1] } }, /buckets\.tokens: is not a histogram/],
      [{ buckets: { stageDuration: [0.1, Number.NaN] } }, /buckets\.stageDuration\[1\]: must be a finite number/],
      [{ maxLabelValues: 0 }, /maxLabelValues: must be an integer in 1\.\.1000/],
      [{ constLabels: { 'bad-name': 'x' } }, /constLabels\.bad-name: is not a valid label name/],
      [{ constLabels: { policy: 'x' } }, /constLabels\.policy: clashes/],
      [{ registry: {} }, /registry: must be a prom-client Registry/],
      [{ perExpertLoad: 'yes' }, /perExpertLoad: must be a boolean/],
    ]
    for (const [options, message] of cases) {
      let error: unknown
      try {
        new RoutingMetrics({ meter: false, ...options } as never)
      } catch (e) {
        error = e
      }
      expect(isMoeError(error) && error.code, JSON.stringify(options)).toBe('MOE_ROUTE_ERR_TELEMETRY_OPTIONS_INVALID')
      expect((error as Error).message).toMatch(message)
    }
  })

  it('stops recording when the subscription ends', async () => {
    const registry = new Registry()
    const metrics = new RoutingMetrics({ registry, meter: false })
    const engine = createMoe({ config: { model } })
    const stream = new TokenStream(engine)
    const sub = metrics.observe(stream.telemetry$)
    await stream.write({ id: 0, tokens: 4, logits: randomLogits(4, 8, 1) })
    for await (const _ of stream) break
    sub.unsubscribe()
    await stream.write({ id: 1, tokens: 4, logits: randomLogits(4, 8, 2) })
    stream.end()
    for await (const _ of stream);
    expect((await promValues(registry))['moe_route_batches_total{}']).toBe(1)
  })

  it('documents every metric in the README table', async () => {
    const { readFileSync } = await import('node:fs')
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')
    expect(readme).toContain(metricsTable())
  })
})
