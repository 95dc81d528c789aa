// CPU cost of @moe-route/telemetry on the job of `npm start` (`moe-route run`, embedded default:
// Mixtral-shaped E 8, k 2, H 256, I 896, 16 × 512 tokens, capacity drop γ 1.0, CPU backend).
//
//   node packages/telemetry/bench/overhead.mjs [--rounds 11] [--cli] [--batches N --tokens N] [--out file.json]
//
// Each round runs the same job once per arm, each in a fresh process, the order rotating from
// round to round: metrics `off` (the package never imported), `on` (RoutingMetrics on a
// prom-client Registry, /metrics served and scraped every second by this script, OpenTelemetry
// API without an SDK: what `moe-route run --metrics-port` would run) and `otel` (as `on` plus an
// OpenTelemetry SDK MeterProvider collected every second); with --cli, `moe-route run --json`
// itself too. CPU time is each process's own user + system time from start to exit
// (process.cpuUsage()). Prints every run, the medians and the median of the per-round ratios
// to `off`. On a shared machine those ratios carry the other tenants' noise, so the script also
// prints the CPU attributable to the metrics in each run: imports and record() measured in the
// run, plus its scrapes and OpenTelemetry collections times the cost of one of each measured alone.
import { spawn, spawnSync } from 'node:child_process'
import { writeFileSync } from 'node:fs'
import { cpus, loadavg, totalmem } from 'node:os'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'

const { values: args } = parseArgs({ options: { rounds: { type: 'string' }, cli: { type: 'boolean' }, batches: { type: 'string' }, tokens: { type: 'string' }, out: { type: 'string' } } })
const rounds = Number(args.rounds ?? 11)
const arms = ['off', 'on', 'otel', ...(args.cli ? ['cli'] : [])]
const root = fileURLToPath(new URL('../../..', import.meta.url))
const child = fileURLToPath(new URL('./overhead-child.mjs', import.meta.url))
const sizeArgs = [args.batches ?? '', args.tokens ?? '']
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b)
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2
}

/** Runs one arm in a fresh process; with the metrics on, scrapes /metrics every second. */
function runArm(arm) {
  if (arm === 'cli') {
    const extra = [...(args.batches ? ['--batches', args.batches] : []), ...(args.tokens ? ['--tokens', args.tokens] : [])]
    const t0 = performance.now()
    // A wrapper reads the CLI process's own CPU time at exit (as /usr/bin/time would).
    const r = spawnSync(process.execPath, ['--import', 'data:text/javascript,process.on("exit",()=>{const c=process.cpuUsage();process.stderr.write("CPU "+(c.user+c.system)/1e6+"\\n")})', `${root}/packages/cli/dist/bin.js`, 'run', '--json', '--no-progress', ...extra], { encoding: 'utf8', maxBuffer: 1 << 26 })
    if (r.status !== 0) throw new Error(`moe-route run failed: ${r.stderr}`)
    const report = JSON.parse(r.stdout)
    return { arm, cpuSeconds: Number(/CPU ([\d.]+)/.exec(r.stderr)[1]), wallSeconds: (performance.now() - t0) / 1000, tokens: report.tokens, droppedPairs: report.droppedPairs, l2Norm: report.output.l2Norm }
  }
  return new Promise((resolve, reject) => {
    const p = spawn(process.execPath, [child, arm, ...sizeArgs], { stdio: ['ignore', 'pipe', 'pipe'] })
    let out = ''
    let err = ''
    let scraper
    let scrapes = 0
    p.stdout.setEncoding('utf8').on('data', (d) => (out += d))
    p.stderr.setEncoding('utf8').on('data', (d) => {
      err += d
      const url = /serving (\S+)/.exec(err)?.[1]
      if (url && !scraper) scraper = setInterval(() => fetch(url).then((r) => r.text()).then(() => scrapes++, () => {}), 1000)
    })
    p.on('exit', (code) => {
      clearInterval(scraper)
      if (code !== 0) return reject(new Error(`${arm} run failed (${code}): ${err}`))
      resolve({ ...JSON.parse(out), scrapedByBench: scrapes })
    })
  })
}

const machine = { cpu: cpus()[0]?.model, cores: cpus().length, memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version, loadavgAtStart: loadavg().map((x) => +x.toFixed(2)) }
console.log(`machine: ${machine.cpu}, ${machine.cores} cores, ${machine.memoryGiB} GiB, Node ${machine.node}, load ${machine.loadavgAtStart.join(' ')}`)
console.log(`job: moe-route run embedded default${args.batches || args.tokens ? ` with ${args.batches ?? 16} batches × ${args.tokens ?? 512} tokens` : ' (16 × 512 tokens, E 8, k 2, H 256, I 896, CPU backend)'}; ${rounds} rounds`)
const runs = []
for (let i = 0; i < rounds; i++) {
  const order = arms.map((_, j) => arms[(i + j) % arms.length])
  for (const arm of order) {
    const r = await runArm(arm)
    runs.push({ round: i, ...r })
    const m = r.metrics
    console.log(
      `round ${i} ${arm.padEnd(4)}: CPU ${r.cpuSeconds.toFixed(2)} s, wall ${r.wallSeconds.toFixed(2)} s, ${r.tokens} tokens, ${r.droppedPairs} dropped` +
        (m ? `; ${m.scrapes} scrapes, ${m.collects} OTel collections, record() ${(m.record * 1000).toFixed(1)} ms, imports ${(m.import * 1000).toFixed(0)} ms` : ''),
    )
  }
}
const by = (arm) => runs.filter((r) => r.arm === arm).sort((a, b) => a.round - b.round)
const same = new Set(runs.map((r) => `${r.tokens}/${r.droppedPairs}/${r.l2Norm}`))
if (same.size !== 1) throw new Error(`the arms did not run the same job: ${[...same].join(' | ')}`)
const summary = { medianCpuSeconds: {}, ratios: {}, medianRatio: {} }
for (const arm of arms) summary.medianCpuSeconds[arm] = median(by(arm).map((r) => r.cpuSeconds))
for (const arm of arms.filter((a) => a !== 'off')) {
  const ratios = by(arm).map((r, i) => r.cpuSeconds / by('off')[i].cpuSeconds)
  summary.ratios[arm] = ratios.map((x) => +x.toFixed(4))
  summary.medianRatio[arm] = median(ratios)
}
console.log(`median CPU: ${arms.map((a) => `${a} ${summary.medianCpuSeconds[a].toFixed(2)} s`).join(', ')}`)
for (const arm of Object.keys(summary.ratios)) {
  const rs = summary.ratios[arm]
  console.log(`CPU ratio ${arm}/off per round: ${rs.join(' ')}; median ${summary.medianRatio[arm].toFixed(4)} (${((summary.medianRatio[arm] - 1) * 100).toFixed(2)}%), range ${Math.min(...rs).toFixed(3)}–${Math.max(...rs).toFixed(3)}`)
}

// Alone, with nothing else running: one record() on a real batch (against routing that batch,
// no layer), one /metrics rendering and one OpenTelemetry collection after 16 batches.
const { RoutingMetrics } = await import('@moe-route/telemetry')
const { createMoe } = await import('@moe-route/core')
const { builtinRegistry, DEFAULT_CONFIG } = await import('@moe-route/cli')
const { MeterProvider, MetricReader } = await import('@opentelemetry/sdk-metrics')
class Reader extends MetricReader {
  async onShutdown() {}
  async onForceFlush() {}
}
const engine = createMoe({ config: DEFAULT_CONFIG, registry: builtinRegistry() })
const logits = Float32Array.from({ length: 512 * 8 }, (_, i) => Math.sin(i * 1.3) * 2)
const cpuNow = () => {
  const c = process.cpuUsage()
  return (c.user + c.system) / 1e6
}
const time = (n, f) => {
  for (let i = 0; i < Math.min(n, 200); i++) f(i)
  const c0 = cpuNow()
  for (let i = 0; i < n; i++) f(i)
  return ((cpuNow() - c0) * 1e6) / n
}
const timeAsync = async (n, f) => {
  for (let i = 0; i < 20; i++) await f()
  const c0 = cpuNow()
  for (let i = 0; i < n; i++) await f()
  return ((cpuNow() - c0) * 1e6) / n
}
const telemetry = engine.route({ id: 0, tokens: 512, logits }).telemetry
const reader = new Reader()
const promOtel = new RoutingMetrics({ meter: new MeterProvider({ readers: [reader] }).getMeter('bench') })
const promOnly = new RoutingMetrics({ meter: false })
for (let i = 0; i < 16; i++) promOtel.record(engine.route({ id: i, tokens: 512, logits }).telemetry)
const aloneUs = {
  recordPrometheusAndOtel: time(20000, () => promOtel.record(telemetry)),
  recordPrometheusOnly: time(20000, () => promOnly.record(telemetry)),
  routeBatch: time(2000, (i) => engine.route({ id: i, tokens: 512, logits })),
  scrape: await timeAsync(500, () => promOtel.registry.metrics()),
  otelCollect: await timeAsync(500, () => reader.collect()),
}
console.log(
  `alone, CPU µs: record() ${aloneUs.recordPrometheusAndOtel.toFixed(1)} (Prometheus + OpenTelemetry SDK), ${aloneUs.recordPrometheusOnly.toFixed(1)} (Prometheus only); ` +
    `routing the same 512-token batch without the layer ${aloneUs.routeBatch.toFixed(1)}; one /metrics rendering ${aloneUs.scrape.toFixed(1)}; one OTel collection ${aloneUs.otelCollect.toFixed(1)}`,
)
// CPU attributable to the metrics in each run: exact (imports, record()) plus counted × alone.
summary.attributable = {}
for (const arm of ['on', 'otel']) {
  const a = by(arm).map((r) => {
    const s = r.metrics.import + r.metrics.record + (r.metrics.scrapes * aloneUs.scrape + r.metrics.collects * aloneUs.otelCollect) / 1e6
    return { seconds: s, fraction: s / r.cpuSeconds }
  })
  summary.attributable[arm] = { medianSeconds: median(a.map((x) => x.seconds)), medianFraction: median(a.map((x) => x.fraction)) }
  console.log(
    `CPU attributable to the metrics per ${arm} run (imports + record() + scrapes × rendering + collections × collection): median ${(summary.attributable[arm].medianSeconds * 1000).toFixed(0)} ms, ${(summary.attributable[arm].medianFraction * 100).toFixed(2)}% of the run`,
  )
}
if (args.out) {
  writeFileSync(args.out, JSON.stringify({ date: new Date().toISOString(), machine, loadavgAtEnd: loadavg().map((x) => +x.toFixed(2)), rounds, batches: args.batches ?? 16, tokens: args.tokens ?? 512, runs, summary, aloneUs }, null, 2) + '\n')
  console.log(`wrote ${args.out}`)
}
