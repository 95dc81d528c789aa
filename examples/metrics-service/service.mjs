// The job of `moe-route run` (the embedded default: config, weights, hidden states, workload and
// stream settings as the CLI builds them) as a service that Prometheus scrapes while it runs.
import { DEFAULT_CONFIG, builtinRegistry } from '@moe-route/cli'
import { TelemetryAggregate, TokenStream, createMoe, balancedness } from '@moe-route/core'
import { batchHidden, workloadFromSpec } from '@moe-route/workloads'

/**
 * Runs the layer over the workload and returns the run's own report.
 * With `metrics` on, `@moe-route/telemetry` is imported (only then), records every batch of the
 * stream and serves /metrics on `host:port` from before the first batch; `onListening(url)` is
 * called once it listens. The server is returned open (`report.server`) for the caller to close.
 */
export async function runService(options = {}) {
  const { batches, tokens, intervalMs = 0, metrics = true, port = 9464, host = '127.0.0.1', meter, registry, onListening, onBatch } = options
  const config = {
    ...DEFAULT_CONFIG,
    workload: { ...DEFAULT_CONFIG.workload, ...(batches ? { batches } : {}), ...(tokens ? { tokensPerBatch: tokens } : {}) },
  }
  const cpu0 = process.cpuUsage()
  const model = config.model
  // Weights come from config.weights (seeded), made by the engine as `moe-route run` makes them.
  const engine = createMoe({ config, registry: builtinRegistry(), source: '(embedded default)' })
  const inFlight = config.stream?.maxInFlight ?? 1 // the CLI's default on a host backend
  const stream = new TokenStream(engine, {
    maxInFlight: inFlight,
    capacity: Math.max(inFlight, config.stream?.capacity ?? 4),
    forward: { detail: 'telemetry', output: 'norm' }, // as the CLI: telemetry and the output's norm
  })

  let server
  let routingMetrics
  if (metrics) {
    const { RoutingMetrics, serveMetrics } = await import('@moe-route/telemetry')
    routingMetrics = new RoutingMetrics({ ...(registry ? { registry } : {}), ...(meter ? { meter } : {}) })
    routingMetrics.observe(stream)
    server = await serveMetrics({ port, host, registry: routingMetrics.registry })
    onListening?.(server.url)
  }

  await engine.ready() // host weights built before the first batch, as the CLI does
  const w = config.workload
  const workload = workloadFromSpec(w.source)
  const agg = new TelemetryAggregate()
  let sumSq = 0
  let last
  const startedAt = Date.now()
  const producer = (async () => {
    try {
      let first = true
      for await (const b of workload.batches({ tokensPerBatch: w.tokensPerBatch, batches: w.batches, seed: w.seed })) {
        // Let the event loop turn between batches, so /metrics is answered during the run: on
        // the CPU backend a batch settles in microtasks only, and back-to-back batches would
        // keep the server from reading its sockets until the run is over.
        if (!first && intervalMs > 0) await new Promise((resolve) => setTimeout(resolve, intervalMs))
        else await new Promise((resolve) => setImmediate(resolve))
        first = false
        const hidden = batchHidden(b, model.hidden, config.seed)
        await stream.write({ ...b, hidden })
      }
    } finally {
      stream.end()
    }
  })()
  // A failed batch makes the producer's next write reject (the consumer below reports it); a
  // producer that fails on its own (the workload) fails the stream.
  producer.catch((e) => stream.abort(e))
  try {
    for await (const r of stream) {
      agg.add(r.telemetry)
      last = r.telemetry
      if (r.outputNorm !== undefined) sumSq += r.outputNorm ** 2
      onBatch?.(r.telemetry)
    }
    await producer
  } catch (e) {
    await server?.close()
    throw e
  } finally {
    await engine.dispose()
  }
  const finishedAt = Date.now()
  const cpu = process.cpuUsage(cpu0)
  const s = agg.summary()
  return {
    workload: { source: w.source, batches: s.batches, tokensPerBatch: w.tokensPerBatch, seed: w.seed },
    batches: s.batches,
    tokens: s.tokens,
    pairs: s.pairs,
    droppedPairs: s.droppedPairs,
    droppedFraction: s.droppedFraction,
    reroutedPairs: s.reroutedPairs,
    gateMassKept: s.gateMassKept,
    maxMeanLoad: { before: s.maxMeanBefore, after: s.maxMeanAfter },
    balancedness: { ...s.balancedness, last: { before: balancedness(last?.loadBefore ?? []), after: balancedness(last?.loadAfter ?? []) } },
    load: { before: s.loadBefore, after: s.loadAfter },
    output: { l2Norm: Math.sqrt(sumSq) },
    startedAt,
    finishedAt,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    metricsUrl: server?.url ?? null,
    server,
  }
}
