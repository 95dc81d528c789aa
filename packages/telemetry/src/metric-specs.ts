/**
 * Every metric the bridge maintains, as data: one row per metric, the single source of the
 * README's table. OpenTelemetry names follow OTel's conventions (dot namespaces, the unit in
 * `unit`, never in the name, no `_total`); the Prometheus name of each row is the OTel name as
 * the OpenTelemetry Collector's Prometheus translation renders it (`.` → `_`, the unit as a
 * suffix: `s` → `_seconds`, `By` → `_bytes`, `1` → `_ratio` on gauges; `{annotation}` units add
 * nothing; counters end in `_total`). So a dashboard works on either path.
 */

/** The three instrument kinds used. */
export type MetricKind = 'counter' | 'gauge' | 'histogram'

/** One metric: its names on both sides, kind, UCUM unit, labels and help text. */
export interface MetricSpec {
  /** OpenTelemetry instrument name. */
  readonly otel: string
  /** Prometheus metric family name (prom-client). */
  readonly prometheus: string
  readonly kind: MetricKind
  /** UCUM unit (`s`, `By`, `1`) or an annotation (`{pair}`). */
  readonly unit: string
  /** Label (attribute) names, besides the constant labels of the instance. */
  readonly labels: readonly string[]
  readonly help: string
  /** Default bucket upper bounds of a histogram. */
  readonly buckets?: readonly number[]
  /** Only maintained when this option is on (bounded cardinality: off by default). */
  readonly optIn?: 'perExpertLoad'
}

/** Seconds, 100 µs to 10 s (routing-only batches take microseconds, a CPU layer seconds). */
export const DURATION_BUCKETS: readonly number[] = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10]
/** Balancedness lies in [1/E, 1]. */
export const BALANCEDNESS_BUCKETS: readonly number[] = [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.95, 0.98, 1]
/** Gate mass kept lies in [0, 1], mostly above 0.8. */
export const GATE_MASS_BUCKETS: readonly number[] = [0.5, 0.6, 0.7, 0.8, 0.85, 0.9, 0.95, 0.98, 0.99, 1]
/** An expert's load over the mean load of its batch: 1 is its fair share. */
export const RELATIVE_LOAD_BUCKETS: readonly number[] = [0, 0.25, 0.5, 0.75, 0.9, 1, 1.1, 1.25, 1.5, 2, 3, 4, 8]

/** The metrics, keyed by a short id used in options (`buckets`). */
export const METRICS = {
  batches: { otel: 'moe_route.batches', prometheus: 'moe_route_batches_total', kind: 'counter', unit: '{batch}', labels: [], help: 'Batches routed.' },
  tokens: { otel: 'moe_route.tokens', prometheus: 'moe_route_tokens_total', kind: 'counter', unit: '{token}', labels: [], help: 'Tokens routed.' },
  pairsRouted: { otel: 'moe_route.pairs.routed', prometheus: 'moe_route_pairs_routed_total', kind: 'counter', unit: '{pair}', labels: [], help: 'Token-expert pairs chosen by the router (tokens × k).' },
  pairsComputed: { otel: 'moe_route.pairs.computed', prometheus: 'moe_route_pairs_computed_total', kind: 'counter', unit: '{pair}', labels: [], help: 'Token-expert pairs computed after the policies and the dispatcher.' },
  pairsDropped: { otel: 'moe_route.pairs.dropped', prometheus: 'moe_route_pairs_dropped_total', kind: 'counter', unit: '{pair}', labels: [], help: 'Router pairs not computed (dropped by a policy or the dispatcher).' },
  tokensFullyDropped: { otel: 'moe_route.tokens.fully_dropped', prometheus: 'moe_route_tokens_fully_dropped_total', kind: 'counter', unit: '{token}', labels: [], help: 'Tokens with every pair dropped (their MoE output is 0).' },
  policyDropped: { otel: 'moe_route.policy.pairs.dropped', prometheus: 'moe_route_policy_pairs_dropped_total', kind: 'counter', unit: '{pair}', labels: ['policy', 'reason'], help: 'Pairs removed, by the plugin that removed them and its reason.' },
  policyRerouted: { otel: 'moe_route.policy.pairs.rerouted', prometheus: 'moe_route_policy_pairs_rerouted_total', kind: 'counter', unit: '{pair}', labels: ['policy'], help: 'Pairs a policy moved to another expert.' },
  policyAdded: { otel: 'moe_route.policy.pairs.added', prometheus: 'moe_route_policy_pairs_added_total', kind: 'counter', unit: '{pair}', labels: ['policy'], help: 'Pairs a policy added beyond the router\'s choice.' },
  policySkipped: { otel: 'moe_route.policy.skipped', prometheus: 'moe_route_policy_skipped_total', kind: 'counter', unit: '{batch}', labels: ['policy', 'reason'], help: 'Batches a policy left unchanged on purpose (e.g. decode steps), by reason.' },
  policyCapacity: { otel: 'moe_route.policy.capacity', prometheus: 'moe_route_policy_capacity', kind: 'gauge', unit: '{pair}', labels: ['policy'], help: 'Per-expert capacity a policy applied to the last batch.' },
  gateMassKept: { otel: 'moe_route.batch.gate_mass_kept', prometheus: 'moe_route_batch_gate_mass_kept', kind: 'histogram', unit: '1', labels: [], help: 'Share of the router\'s gate weight kept, per batch.', buckets: GATE_MASS_BUCKETS },
  balancedness: { otel: 'moe_route.balancedness', prometheus: 'moe_route_balancedness_ratio', kind: 'gauge', unit: '1', labels: ['pairs'], help: 'Expert-load balancedness of the last batch, mean load / max load (vLLM\'s definition); pairs="routed" before the policies, "computed" after.' },
  batchBalancedness: { otel: 'moe_route.batch.balancedness', prometheus: 'moe_route_batch_balancedness', kind: 'histogram', unit: '1', labels: ['pairs'], help: 'Expert-load balancedness (mean load / max load) per batch.', buckets: BALANCEDNESS_BUCKETS },
  relativeLoad: { otel: 'moe_route.expert.relative_load', prometheus: 'moe_route_expert_relative_load', kind: 'histogram', unit: '1', labels: ['pairs'], help: 'Each expert\'s load over the mean load of its batch (one observation per expert and batch).', buckets: RELATIVE_LOAD_BUCKETS },
  expertPairs: { otel: 'moe_route.expert.pairs', prometheus: 'moe_route_expert_pairs_total', kind: 'counter', unit: '{pair}', labels: ['expert', 'pairs'], help: 'Pairs per expert (opt-in: one series per expert).', optIn: 'perExpertLoad' },
  cacheHits: { otel: 'moe_route.expert_cache.hits', prometheus: 'moe_route_expert_cache_hits_total', kind: 'counter', unit: '{expert}', labels: [], help: 'Expert-store lookups that found the expert resident.' },
  cacheMisses: { otel: 'moe_route.expert_cache.misses', prometheus: 'moe_route_expert_cache_misses_total', kind: 'counter', unit: '{expert}', labels: [], help: 'Expert-store lookups that had to load the expert.' },
  cacheEvictions: { otel: 'moe_route.expert_cache.evictions', prometheus: 'moe_route_expert_cache_evictions_total', kind: 'counter', unit: '{expert}', labels: [], help: 'Experts evicted from the store.' },
  cacheUploaded: { otel: 'moe_route.expert_cache.uploaded', prometheus: 'moe_route_expert_cache_uploaded_bytes_total', kind: 'counter', unit: 'By', labels: [], help: 'Expert weight bytes uploaded into the store.' },
  cacheResident: { otel: 'moe_route.expert_cache.resident', prometheus: 'moe_route_expert_cache_resident', kind: 'gauge', unit: '{expert}', labels: [], help: 'Experts resident in the store after the last batch.' },
  crossDevice: { otel: 'moe_route.dispatch.cross_device', prometheus: 'moe_route_dispatch_cross_device_bytes_total', kind: 'counter', unit: 'By', labels: [], help: 'Activation bytes the dispatch plans send across devices.' },
  paddingRows: { otel: 'moe_route.dispatch.padding_rows', prometheus: 'moe_route_dispatch_padding_rows_total', kind: 'counter', unit: '{row}', labels: [], help: 'Padding rows computed by static (capacity-padded) dispatch.' },
  stageDuration: { otel: 'moe_route.stage.duration', prometheus: 'moe_route_stage_duration_seconds', kind: 'histogram', unit: 's', labels: ['stage'], help: 'Time per batch in each stage (gate, route, policies, dispatch, store, experts, total).', buckets: DURATION_BUCKETS },
  kernelDuration: { otel: 'moe_route.kernel.duration', prometheus: 'moe_route_kernel_duration_seconds', kind: 'histogram', unit: 's', labels: ['kernel'], help: 'GPU kernel time per batch reported by the backend (timestamp queries), by kernel.', buckets: DURATION_BUCKETS },
  pipelineStageDuration: { otel: 'moe_route.pipeline.stage.duration', prometheus: 'moe_route_pipeline_stage_duration_seconds', kind: 'histogram', unit: 's', labels: ['stage', 'where'], help: 'Time per batch of each stage of a device pipeline (`router:<name>`, `policy:<name>`, `experts`, …), where="device" (kernel time, when profiled) or "host" (a round trip).', buckets: DURATION_BUCKETS },
  fallbacks: { otel: 'moe_route.fallbacks', prometheus: 'moe_route_fallbacks_total', kind: 'counter', unit: '{batch}', labels: ['plugin', 'fallback'], help: 'Batches a plugin failed on and its fallback finished (a policy\'s configured fallback, or a backend after device loss).' },
  hostRoundTrips: { otel: 'moe_route.host_round_trips', prometheus: 'moe_route_host_round_trips_total', kind: 'counter', unit: '{round_trip}', labels: ['plugin'], help: 'Device-to-host round trips a plugin without a device lowering forced.' },
} as const satisfies Record<string, MetricSpec>

/** Id of a metric in {@link METRICS}. */
export type MetricId = keyof typeof METRICS
/** Id of a histogram in {@link METRICS}. */
export type HistogramId = { [K in MetricId]: (typeof METRICS)[K]['kind'] extends 'histogram' ? K : never }[MetricId]

/** The Markdown table of every metric (the README's). */
export function metricsTable(): string {
  const rows = Object.values(METRICS as Record<string, MetricSpec>).map(
    (m) => `| \`${m.prometheus}\` | \`${m.otel}\` | ${m.kind} | \`${m.unit}\` | ${m.labels.map((l) => `\`${l}\``).join(', ') || '–'} | ${m.help}${m.optIn ? ` Needs \`${m.optIn}: true\`.` : ''} |`,
  )
  return ['| Prometheus | OpenTelemetry | kind | unit | labels | what |', '|---|---|---|---|---|---|', ...rows].join('\n')
}
