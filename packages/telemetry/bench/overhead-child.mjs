// One run of the bench (see overhead.mjs): the job of `moe-route run` on the embedded default in
// this process, with the metrics
//   off   the telemetry package is never imported (what `moe-route run` does today);
//   on    RoutingMetrics on a prom-client Registry, /metrics served, OpenTelemetry left to the
//         global API (a no-op: no SDK registered) — what `moe-route run --metrics-port` would do;
//   otel  as `on`, plus an OpenTelemetry SDK MeterProvider collected every second.
// Prints JSON: the process's own CPU time (user + system, since start); with metrics, the CPU
// time of importing the metrics packages and of record() (synchronous, so measured exactly) and
// how many scrapes and collections there were (their asynchronous work interleaves with the
// batches; overhead.mjs measures one of each alone).
import { runService } from '../../../examples/metrics-service/service.mjs'

const arm = process.argv[2]
if (!['off', 'on', 'otel'].includes(arm)) throw new Error(`arm must be off, on or otel, got ${arm}`)
const batches = process.argv[3] ? Number(process.argv[3]) : undefined
const tokens = process.argv[4] ? Number(process.argv[4]) : undefined
const cpuNow = () => {
  const c = process.cpuUsage()
  return (c.user + c.system) / 1e6
}
const spent = { import: 0, record: 0, scrapes: 0, collects: 0 }
let registry
if (arm !== 'off') {
  const t0 = cpuNow()
  const { RoutingMetrics } = await import('@moe-route/telemetry') // what runService imports
  const { Registry } = await import('prom-client')
  if (arm === 'otel') {
    const { metrics } = await import('@opentelemetry/api')
    const { MeterProvider, MetricReader } = await import('@opentelemetry/sdk-metrics')
    // Collects every second, as an exporter's periodic reader would (OTLP's default is 60 s).
    class EverySecond extends MetricReader {
      async onShutdown() {}
      async onForceFlush() {}
    }
    const reader = new EverySecond()
    metrics.setGlobalMeterProvider(new MeterProvider({ readers: [reader] }))
    setInterval(() => {
      spent.collects++
      void reader.collect()
    }, 1000).unref()
  }
  spent.import = cpuNow() - t0
  const record = RoutingMetrics.prototype.record
  RoutingMetrics.prototype.record = function (t) {
    const c0 = cpuNow()
    record.call(this, t)
    spent.record += cpuNow() - c0
  }
  registry = new Registry()
  const render = registry.metrics.bind(registry)
  registry.metrics = () => {
    spent.scrapes++
    return render()
  }
}
const t0 = performance.now()
const report = await runService({ metrics: arm !== 'off', port: 0, batches, tokens, registry, onListening: (url) => console.error(`serving ${url}`) })
const wall = (performance.now() - t0) / 1000
await report.server?.close()
console.log(
  JSON.stringify({
    arm,
    cpuSeconds: cpuNow(),
    wallSeconds: wall,
    ...(arm !== 'off' ? { metrics: spent } : {}),
    tokens: report.tokens,
    droppedPairs: report.droppedPairs,
    l2Norm: report.output.l2Norm,
  }),
)
