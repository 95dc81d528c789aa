/** Options of {@link RoutingMetrics} and their validation (a bad option throws a coded error). */
import type { Meter } from '@opentelemetry/api'
import type { Registry } from 'prom-client'
import { ErrorCodes, MoeError } from '@moe-route/core'
import { METRICS, type HistogramId, type MetricSpec } from './metric-specs.js'

/** Options of {@link RoutingMetrics}. */
export interface RoutingMetricsOptions {
  /**
   * prom-client Registry to register the metrics in; default a new Registry (pass prom-client's
   * global `register` to expose them with your other metrics); `false`: no Prometheus side.
   */
  readonly registry?: Registry | false
  /**
   * OpenTelemetry Meter; default the global MeterProvider's meter `@moe-route/telemetry` (a no-op
   * until your app registers an SDK); `false`: no OpenTelemetry side.
   */
  readonly meter?: Meter | false
  /** One `moe_route_expert_pairs_total` series per expert and pairs kind (2·E series). Default false. */
  readonly perExpertLoad?: boolean
  /** Per-expert series kept with `perExpertLoad`; experts from this index on report `expert="other"`. Default 256. */
  readonly maxExperts?: number
  /** Distinct values per label (policy, reason, plugin, kernel); later new values report `other`. Default 32. */
  readonly maxLabelValues?: number
  /** Labels on every series, e.g. `{ layer: '7' }` when several layers share a registry. */
  readonly constLabels?: Readonly<Record<string, string>>
  /** Bucket upper bounds per histogram, replacing the defaults (strictly increasing, finite). */
  readonly buckets?: Partial<Record<HistogramId, readonly number[]>>
}

/** Options with defaults applied and checked. */
export interface ResolvedOptions {
  readonly registry?: Registry | false
  readonly meter?: Meter | false
  readonly perExpertLoad: boolean
  readonly maxExperts: number
  readonly maxLabelValues: number
  readonly constLabels: Readonly<Record<string, string>>
  readonly buckets: Partial<Record<HistogramId, readonly number[]>>
}

const LABEL_NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/
const bad = (path: string, message: string): never => {
  throw new MoeError(ErrorCodes.TELEMETRY_OPTIONS_INVALID, `telemetry option ${path}: ${message}`, { path })
}

/** Applies defaults and checks every option. */
export function resolveOptions(o: RoutingMetricsOptions): ResolvedOptions {
  if (o === null || typeof o !== 'object') bad('', 'options must be an object')
  const registry = o.registry
  if (registry !== undefined && registry !== false && typeof (registry as Registry)?.getSingleMetric !== 'function') {
    bad('registry', 'must be a prom-client Registry or false')
  }
  const meter = o.meter
  if (meter !== undefined && meter !== false && typeof (meter as Meter)?.createCounter !== 'function') {
    bad('meter', 'must be an OpenTelemetry Meter or false')
  }
  const count = (path: string, v: unknown, dflt: number, max: number): number => {
    if (v === undefined) return dflt
    if (!Number.isInteger(v) || (v as number) < 1 || (v as number) > max) bad(path, `must be an integer in 1..${max}, got ${String(v)}`)
    return v as number
  }
  if (o.perExpertLoad !== undefined && typeof o.perExpertLoad !== 'boolean') bad('perExpertLoad', `must be a boolean, got ${typeof o.perExpertLoad}`)
  const constLabels = o.constLabels ?? {}
  if (typeof constLabels !== 'object' || constLabels === null) bad('constLabels', 'must be an object of strings')
  const used = new Set(Object.values(METRICS as Record<string, MetricSpec>).flatMap((m) => m.labels))
  for (const [k, v] of Object.entries(constLabels)) {
    if (!LABEL_NAME.test(k) || k.startsWith('__')) bad(`constLabels.${k}`, 'is not a valid label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)')
    if (used.has(k)) bad(`constLabels.${k}`, `clashes with a label the metrics set themselves (${[...used].join(', ')})`)
    if (typeof v !== 'string') bad(`constLabels.${k}`, `must be a string, got ${typeof v}`)
  }
  const buckets: Partial<Record<HistogramId, readonly number[]>> = {}
  for (const [id, b] of Object.entries(o.buckets ?? {})) {
    const spec = (METRICS as Record<string, MetricSpec>)[id]
    if (!spec || spec.kind !== 'histogram') {
      const ids = Object.entries(METRICS).filter(([, m]) => m.kind === 'histogram').map(([k]) => k)
      bad(`buckets.${id}`, `is not a histogram of this package (histograms: ${ids.join(', ')})`)
    }
    if (!Array.isArray(b) || b.length === 0 || b.length > 100) bad(`buckets.${id}`, 'must be an array of 1 to 100 numbers')
    b!.forEach((x, j) => {
      if (typeof x !== 'number' || !Number.isFinite(x)) bad(`buckets.${id}[${j}]`, `must be a finite number, got ${String(x)}`)
      if (j > 0 && !(x > b![j - 1])) bad(`buckets.${id}[${j}]`, `must be greater than the bound before it (${b![j - 1]})`)
    })
    buckets[id as HistogramId] = b as readonly number[]
  }
  return {
    ...(registry !== undefined ? { registry } : {}),
    ...(meter !== undefined ? { meter } : {}),
    perExpertLoad: o.perExpertLoad === true,
    maxExperts: count('maxExperts', o.maxExperts, 256, 4096),
    maxLabelValues: count('maxLabelValues', o.maxLabelValues, 32, 1000),
    constLabels,
    buckets,
  }
}
