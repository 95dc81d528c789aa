/**
 * The cost of running a plugin loaded from a package under the CLI's protections (SECURITY.md),
 * on the host, in one run: the same policy — @moe-route/policy-capacity's capacity-drop, imported from its
 * built package — routed batch after batch through the engine
 *
 * - `direct`: imported and called as it is (how built-in plugins run);
 * - `bounded`: every call under the `vm` watchdog (the default for package plugins: an endless
 *   loop is interrupted, MOE_ROUTE_ERR_PLUGIN_TIMEOUT);
 * - `isolated`: in a worker thread, each call a synchronous RPC (`--isolate-plugins`).
 *
 * It prints one JSON document: machine, shapes, and per shape the median ms per batch of each
 * mode (engine.route: router + policy + dispatcher) and the ratios to `direct`. Modes run
 * interleaved, round after round, so a noisy neighbour hits all of them alike.
 *
 * Usage (any machine, after a build): npx tsx bench/plugin-isolation.bench.ts [--rounds 7] [--out bench/results]
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, totalmem } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { createMoe, createRegistry, softmaxRows, type MoeEngine, type Plugin } from '@moe-route/core'
import { boundedPlugin, isolatedPlugins, resolvePluginPackage } from '@moe-route/core/node'
import capacityDrop from '@moe-route/policy-capacity/capacity-drop'

const argv = process.argv.slice(2)
const opt = (name: string, fallback: string) => {
  const i = argv.indexOf(`--${name}`)
  return i >= 0 && argv[i + 1] !== undefined ? argv[i + 1] : fallback
}
const rounds = Number(opt('rounds', '7'))
const out = opt('out', '')
const ROOT = fileURLToPath(new URL('..', import.meta.url))
const loadAtStart = loadavg()[0]

const shapes = [
  { experts: 8, topK: 2, tokens: 1 },
  { experts: 8, topK: 2, tokens: 64 },
  { experts: 8, topK: 2, tokens: 512 },
  { experts: 64, topK: 8, tokens: 512 },
  { experts: 64, topK: 8, tokens: 4096 },
]

/** Seeded router scores for `batches` batches of a shape. */
function batches(s: (typeof shapes)[number], n: number) {
  let x = 12345
  const rand = () => ((x = (Math.imul(x, 1103515245) + 12345) >>> 0) / 4294967296)
  return Array.from({ length: n }, (_, id) => {
    const logits = Float32Array.from({ length: s.tokens * s.experts }, () => (rand() - 0.5) * 6)
    return { id, tokens: s.tokens, scores: softmaxRows(logits, s.tokens, s.experts) }
  })
}

function engineFor(plugin: Plugin, s: (typeof shapes)[number]): MoeEngine {
  const registry = createRegistry([plugin])
  return createMoe({ config: { model: { experts: s.experts, topK: s.topK, hidden: 1, intermediate: 1 }, policies: [{ use: 'capacity-drop', options: { capacityFactor: 1 } }] }, registry })
}

/** ms per batch of routing `work` through an engine (after a warm-up). */
function time(engine: MoeEngine, work: ReturnType<typeof batches>): number {
  for (const b of work.slice(0, 3)) engine.route(b)
  const t0 = performance.now()
  for (const b of work) engine.route(b)
  return (performance.now() - t0) / work.length
}

const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]

const pkg = resolvePluginPackage('@moe-route/policy-capacity', { from: ROOT })
const [isolatedDrop] = await isolatedPlugins(pkg, { timeoutMs: 60_000 })
const modes: Record<string, Plugin> = { direct: capacityDrop, bounded: boundedPlugin(capacityDrop, 10_000), isolated: isolatedDrop }

const rows = []
for (const s of shapes) {
  const n = Math.max(20, Math.min(2000, Math.round(200_000 / (s.tokens * s.experts))))
  const work = batches(s, n)
  const engines = Object.fromEntries(Object.entries(modes).map(([m, p]) => [m, engineFor(p, s)]))
  const ms: Record<string, number[]> = { direct: [], bounded: [], isolated: [] }
  for (let r = 0; r < rounds; r++) for (const m of Object.keys(modes)) ms[m].push(time(engines[m], work))
  const med = Object.fromEntries(Object.entries(ms).map(([m, v]) => [m, median(v)]))
  rows.push({
    ...s,
    batchesPerRound: n,
    msPerBatch: med,
    ratioToDirect: { bounded: med.bounded / med.direct, isolated: med.isolated / med.direct },
    overheadUsPerBatch: { bounded: (med.bounded - med.direct) * 1000, isolated: (med.isolated - med.direct) * 1000 },
  })
  console.error(`E=${s.experts} k=${s.topK} T=${s.tokens}: direct ${med.direct.toFixed(4)} ms, bounded ${med.bounded.toFixed(4)} ms (×${(med.bounded / med.direct).toFixed(2)}), isolated ${med.isolated.toFixed(4)} ms (×${(med.isolated / med.direct).toFixed(2)})`)
}
const report = {
  bench: 'plugin-isolation',
  what: 'engine.route (softmax-top-k router, capacity-drop γ=1 from its built package, exact-size dispatcher) per batch; median of rounds',
  // the load average at start and end: on a shared machine the ratios are the numbers to read
  machine: { cpus: cpus().length, cpu: cpus()[0]?.model?.trim(), memoryGiB: Math.round(totalmem() / 2 ** 30), node: process.version, platform: process.platform, load1: { start: loadAtStart, end: loadavg()[0] } },
  rounds,
  date: new Date().toISOString(),
  rows,
}
const text = JSON.stringify(report, null, 2)
console.log(text)
if (out) {
  mkdirSync(out, { recursive: true })
  writeFileSync(join(out, 'plugin-isolation.json'), text + '\n')
}
process.exit(0)
