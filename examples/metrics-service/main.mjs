// `npm start`: the embedded default job of `moe-route run`, served as Prometheus metrics at
// http://127.0.0.1:9464/metrics while it runs, then the run's report; keeps serving until
// Ctrl-C (or for --linger seconds). `node main.mjs --help` lists the options.
import { parseArgs } from 'node:util'
import { runService } from './service.mjs'

const usage = `usage: node main.mjs [options]
  --port N          port of /metrics (default 9464; 0 picks a free one)
  --host ADDR       address to listen on (default 127.0.0.1, loopback only)
  --batches N       batches (default 16, as moe-route run)
  --tokens N        tokens per batch (default 512)
  --interval-ms N   pause between batches, to watch the run in Prometheus (default 0)
  --linger S        after the run, keep serving S seconds (default: until Ctrl-C)
  --no-metrics      run without @moe-route/telemetry (nothing imported, nothing served)
  --json            print the report as JSON`

let args
try {
  args = parseArgs({
    options: {
      port: { type: 'string' }, host: { type: 'string' }, batches: { type: 'string' }, tokens: { type: 'string' },
      'interval-ms': { type: 'string' }, linger: { type: 'string' }, 'no-metrics': { type: 'boolean' }, json: { type: 'boolean' }, help: { type: 'boolean' },
    },
  }).values
} catch (e) {
  fail(e.message)
}
if (args.help) {
  console.log(usage)
  process.exit(0)
}

function fail(message) {
  console.error(`MOE_ROUTE_ERR_INPUT_INVALID: ${message}\n${usage}`)
  process.exit(2)
}
function int(name, min, max) {
  const v = args[name]
  if (v === undefined) return undefined
  const n = Number(v)
  if (!Number.isInteger(n) || n < min || n > max) fail(`--${name} must be an integer in ${min}..${max}, got ${v}`)
  return n
}

const options = {
  port: int('port', 0, 65535) ?? 9464,
  host: args.host ?? '127.0.0.1',
  batches: int('batches', 1, 1_000_000),
  tokens: int('tokens', 1, 1_000_000),
  intervalMs: int('interval-ms', 0, 3_600_000) ?? 0,
  metrics: !args['no-metrics'],
  onListening: (url) => console.error(`serving ${url}`),
}
const linger = int('linger', 0, 31_536_000)

let report
try {
  report = await runService(options)
} catch (e) {
  console.error(e?.code ? `${e.code}: ${e.message}` : e)
  process.exit(1)
}
const { server, ...shown } = report
const cpu = process.cpuUsage()
shown.processCpuSeconds = (cpu.user + cpu.system) / 1e6
if (args.json) console.log(JSON.stringify(shown))
else {
  const pct = (x) => `${(100 * x).toFixed(2)}%`
  console.log(
    [
      `moe-route metrics-service: ${shown.workload.source}, ${shown.batches} × ${shown.workload.tokensPerBatch} tokens = ${shown.tokens} tokens`,
      `dropped      ${shown.droppedPairs} of ${shown.pairs} pairs (${pct(shown.droppedFraction)}); gate mass kept ${pct(shown.gateMassKept)}`,
      `balancedness before: mean ${shown.balancedness.before.mean.toFixed(4)}, worst ${shown.balancedness.before.min.toFixed(4)}   after: mean ${shown.balancedness.after.mean.toFixed(4)}, worst ${shown.balancedness.after.min.toFixed(4)}`,
      `output       L2 norm ${shown.output.l2Norm.toFixed(6)}; CPU ${shown.processCpuSeconds.toFixed(2)} s`,
    ].join('\n'),
  )
}

if (server) {
  if (linger === undefined) console.error(`run finished; still serving ${server.url} (Ctrl-C to stop)`)
  const stop = async () => {
    await server.close()
    process.exit(0)
  }
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
  if (linger !== undefined) setTimeout(stop, linger * 1000)
}
