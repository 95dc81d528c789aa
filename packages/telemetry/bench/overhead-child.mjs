// One run of the bench (see overhead.mjs): the job of `moe-route run` on the embedded default,
// with the metrics on (RoutingMetrics on a prom-client Registry and on an OpenTelemetry SDK
// MeterProvider collected every second, /metrics served) or off (the telemetry package is never
// imported). Prints the process's own CPU time (user + system, since start) as JSON, and with the
// metrics on the CPU time of importing the metrics packages and of record() (both synchronous,
// so measured exactly) and how many scrapes and OpenTelemetry collections there were (their
// asynchronous work interleaves with the batches; overhead.mjs measures one of each alone).
import { runService } from '../../../examples/metrics-service/service.mjs'

const on = process.argv[2] === 'on'
const batches = process.argv[3] ? Number(process.argv[3]) : undefined
const tokens = process.argv[4] ? Number(process.argv[4]) : undefined
const cpuNow = () => {
  const c = process.cpuUsage()
  return (c.user + c.system) / 1e6
}
const spent = { import: 0, record: 0, scrapes: 0, collects: 0 }
let registry
if (on) {
  const t0 = cpuNow()
  const { metrics } = await import('@opentelemetry/api')
  const { MeterProvider, MetricReader } = await import('@opentelemetry/sdk-metrics')
  const { RoutingMetrics } = await import('@moe-route/telemetry') // what runService imports
  const { Registry } = await import('prom-client')
  spent.import = cpuNow() - t0
  // Collects every second, as an exporter's periodic reader would (more often than OTLP's 60 s).
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
const report = await runService({ metrics: on, port: 0, batches, tokens, registry, onListening: (url) => console.error(`serving ${url}`) })
const wall = (performance.now() - t0) / 1000
await report.server?.close()
console.log(
  JSON.stringify({
    arm: on ? 'on' : 'off',
    cpuSeconds: cpuNow(),
    wallSeconds: wall,
    ...(on ? { metrics: spent } : {}),
    tokens: report.tokens,
    droppedPairs: report.droppedPairs,
    l2Norm: report.output.l2Norm,
  }),
)
