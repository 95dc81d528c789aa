/**
 * One metric on both sides: a prom-client metric in a Registry and an OpenTelemetry instrument
 * from a Meter, either side optional. Labelled series are cached per label-value tuple, so a
 * batch costs a Map lookup per series instead of prom-client's label hashing and a fresh OTel
 * attributes object.
 */
import type { Attributes, Meter, ObservableGauge } from '@opentelemetry/api'
import { Counter, Gauge, Histogram, type Registry } from 'prom-client'
import { ErrorCodes, MoeError } from '@moe-route/core'
import type { MetricSpec } from './metric-specs.js'

/** Where instruments are created. */
export interface InstrumentTarget {
  readonly registry?: Registry
  readonly meter?: Meter
  /** Labels put on every series (e.g. `{ layer: '7' }`). */
  readonly constLabels: Readonly<Record<string, string>>
}

/** One labelled series. */
export interface Series {
  /** Counter: adds `value`; histogram: observes it; gauge: sets it. */
  record(value: number): void
}

type PromChild = { inc?(v: number): void; observe?(v: number): void; set?(v: number): void }
type PromMetric = { labels(labels: Record<string, string>): PromChild; labelNames?: readonly string[]; type?: string }

/** A metric of {@link MetricSpec} on the target's registry and meter. */
export class Instrument {
  readonly spec: MetricSpec
  readonly #target: InstrumentTarget
  readonly #prom?: PromMetric
  readonly #otel?: { add?(v: number, a: Attributes): void; record?(v: number, a: Attributes): void }
  readonly #gaugeValues = new Map<string, { attributes: Attributes; value: number }>()
  readonly #series = new Map<string, Series>()

  constructor(spec: MetricSpec, target: InstrumentTarget, buckets?: readonly number[]) {
    this.spec = spec
    this.#target = target
    const labelNames = [...Object.keys(target.constLabels), ...spec.labels]
    if (target.registry) this.#prom = promMetric(spec, target.registry, labelNames, buckets)
    const meter = target.meter
    if (meter) {
      const opts = { description: spec.help, unit: spec.unit }
      if (spec.kind === 'counter') this.#otel = meter.createCounter(spec.otel, opts)
      else if (spec.kind === 'histogram') this.#otel = meter.createHistogram(spec.otel, { ...opts, advice: { explicitBucketBoundaries: [...(buckets ?? spec.buckets ?? [])] } })
      else {
        const gauge: ObservableGauge = meter.createObservableGauge(spec.otel, opts)
        gauge.addCallback((result) => {
          for (const { attributes, value } of this.#gaugeValues.values()) result.observe(value, attributes)
        })
      }
    }
  }

  /** The series of these label values (in the order of `spec.labels`). */
  series(values: readonly string[] = []): Series {
    const key = values.join('\u0001')
    let s = this.#series.get(key)
    if (!s) this.#series.set(key, (s = this.#createSeries(key, values)))
    return s
  }

  #createSeries(key: string, values: readonly string[]): Series {
    const labels: Record<string, string> = { ...this.#target.constLabels }
    this.spec.labels.forEach((l, i) => (labels[l] = values[i]))
    const attributes: Attributes = Object.freeze({ ...labels })
    const child = this.#prom?.labels(labels)
    const otel = this.#otel
    switch (this.spec.kind) {
      case 'counter':
        return {
          record(v) {
            // A counter only goes up: a negative or non-finite count from a plugin is ignored.
            if (!(v >= 0) || v === Infinity) return
            child?.inc!(v)
            otel?.add!(v, attributes)
          },
        }
      case 'histogram':
        return {
          record(v) {
            if (!Number.isFinite(v)) return
            child?.observe!(v)
            otel?.record!(v, attributes)
          },
        }
      default: {
        const slot = { attributes, value: 0 }
        return {
          record: (v) => {
            if (!Number.isFinite(v)) return
            child?.set!(v)
            slot.value = v
            this.#gaugeValues.set(key, slot)
          },
        }
      }
    }
  }
}

/** The registry's metric of this name, created, or reused when it has the same kind and labels. */
function promMetric(spec: MetricSpec, registry: Registry, labelNames: readonly string[], buckets?: readonly number[]): PromMetric {
  const existing = registry.getSingleMetric(spec.prometheus) as unknown as PromMetric | undefined
  if (existing) {
    const same = existing.type === spec.kind && sameSet(existing.labelNames ?? [], labelNames)
    if (!same) {
      throw new MoeError(
        ErrorCodes.TELEMETRY_OPTIONS_INVALID,
        `metric ${spec.prometheus} is already registered as a ${existing.type} with labels [${(existing.labelNames ?? []).join(', ')}]; ` +
          `this instance needs a ${spec.kind} with labels [${labelNames.join(', ')}] (give every instance sharing a registry the same constLabels keys)`,
        { metric: spec.prometheus },
      )
    }
    return existing
  }
  const config = { name: spec.prometheus, help: spec.help, labelNames: [...labelNames], registers: [registry] }
  if (spec.kind === 'counter') return new Counter(config) as unknown as PromMetric
  if (spec.kind === 'gauge') return new Gauge(config) as unknown as PromMetric
  return new Histogram({ ...config, buckets: [...(buckets ?? spec.buckets ?? [])] }) as unknown as PromMetric
}

function sameSet(a: readonly string[], b: readonly string[]): boolean {
  return a.length === b.length && a.every((x) => b.includes(x))
}
