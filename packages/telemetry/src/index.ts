/**
 * @moe-route/telemetry — moe-route's batch telemetry as Prometheus (prom-client) and
 * OpenTelemetry metrics. Public API only: re-exports, no logic.
 */
export { RoutingMetrics, type TelemetrySource, type TelemetrySubscribable } from './routing-metrics.js'
export type { RoutingMetricsOptions } from './options.js'
export {
  METRICS,
  metricsTable,
  DURATION_BUCKETS,
  BALANCEDNESS_BUCKETS,
  GATE_MASS_BUCKETS,
  RELATIVE_LOAD_BUCKETS,
  type MetricSpec,
  type MetricKind,
  type MetricId,
  type HistogramId,
} from './metric-specs.js'
export { OTHER_LABEL_VALUE, MAX_LABEL_VALUE_LENGTH } from './label-limiter.js'
export { serveMetrics, type ServeMetricsOptions, type MetricsServer } from './serve-metrics.js'
