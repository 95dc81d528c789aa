#!/usr/bin/env node
// The DeepSeek-scale benchmark of `moe-route simulate` (whole process: Node start, config,
// workload generation, capacity-drop, expert-parallel cost) against the plain loop that only
// draws the same number of expert ids and counts them, measured in the same run. Runs the CLI
// with 1 and 2 worker threads, checks the results are identical, records peak memory.
//   node packages/simulator/bench/scale.mjs [--runs 3] [--batches 128] [--out results.json]
// Needs the built CLI (npx turbo run build). Prints a markdown table and writes JSON.
import { spawnSync } from 'node:child_process'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { cpus, loadavg, tmpdir, totalmem } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? process.argv[i + 1] : dflt
}
const RUNS = Number(arg('runs', 3))
const BATCHES = Number(arg('batches', 128))
const TOKENS_PER_BATCH = 8192
const E = 256
const K = 8
const D = 256
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')
const bin = join(root, 'packages/cli/dist/bin.js')
const dir = mkdtempSync(join(tmpdir(), 'moe-route-scale-'))
const config = join(dir, 'deepseek-scale.json')
writeFileSync(
  config,
  JSON.stringify({
    model: { name: 'DeepSeek-V3-like MoE layer', experts: E, topK: K, hidden: 7168, intermediate: 2048, normalizeTopK: true },
    devices: D,
    policies: [{ use: 'capacity-drop', options: { capacityFactor: 1.25 } }],
    workload: { source: `uniform:E=${E}:k=${K}`, tokensPerBatch: TOKENS_PER_BATCH, batches: BATCHES, seed: 1 },
    seed: 1,
  }),
)
// peak RSS of the whole process (worker threads included), printed at exit
const preload = join(dir, 'maxrss.mjs')
writeFileSync(preload, "process.on('exit', () => { const u = process.resourceUsage(); process.stderr.write(`\\nMAXRSS_KB ${u.maxRSS} CPU_US ${u.userCPUTime + u.systemCPUTime}\\n`) })\n")
const pairs = BATCHES * TOKENS_PER_BATCH * K

// the plain loop: draw 8.4 M expert ids (mulberry32, as the generators do) and count them
const plainSource = `
const N = ${pairs}, E = ${E}
const t0 = performance.now()
const cpu0 = process.cpuUsage()
const counts = new Int32Array(E)
let a = 1
for (let i = 0; i < N; i++) {
  a = (a + 0x6d2b79f5) >>> 0
  let t = Math.imul(a ^ (a >>> 15), a | 1)
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
  counts[Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * E)]++
}
const ms = performance.now() - t0
const cpu = process.cpuUsage(cpu0)
let s = 0
for (const c of counts) s += c
if (s !== N) throw new Error('lost ids')
process.stdout.write(JSON.stringify({ seconds: ms / 1000, cpu: (cpu.user + cpu.system) / 1e6 }))
`
function plain() {
  const r = spawnSync(process.execPath, ['-e', plainSource], { encoding: 'utf8' })
  if (r.status !== 0) throw new Error(r.stderr)
  return JSON.parse(r.stdout)
}
function simulate(workers) {
  const t0 = performance.now()
  const r = spawnSync(process.execPath, ['--import', preload, bin, 'simulate', '-c', config, '--json', '--workers', String(workers)], { encoding: 'utf8', maxBuffer: 1 << 26 })
  const seconds = (performance.now() - t0) / 1000
  if (r.status !== 0) throw new Error(`simulate exited ${r.status}: ${r.stderr}`)
  const rss = Number(/MAXRSS_KB (\d+)/.exec(r.stderr)?.[1] ?? NaN) * 1024
  const cpu = Number(/CPU_US (\d+)/.exec(r.stderr)?.[1] ?? NaN) / 1e6
  return { seconds, cpu, rss, json: JSON.parse(r.stdout) }
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const without = ({ wallSeconds, tokensPerSecond, ...rest }) => rest

const rows = []
for (let i = 0; i < RUNS; i++) {
  const p = plain()
  const one = simulate(1)
  const two = simulate(2)
  rows.push({ plain: p, one, two })
  process.stderr.write(`run ${i + 1}/${RUNS}: plain ${p.seconds.toFixed(3)} s (CPU ${p.cpu.toFixed(3)} s), simulate 1 worker ${one.seconds.toFixed(2)} s (CPU ${one.cpu.toFixed(2)} s), 2 workers ${two.seconds.toFixed(2)} s (CPU ${two.cpu.toFixed(2)} s)\n`)
}
const identical = rows.every((r) => JSON.stringify({ ...r.one.json, summary: without(r.one.json.summary) }) === JSON.stringify({ ...r.two.json, summary: without(r.two.json.summary) }))
const s = rows[0].one.json.summary
const result = {
  date: new Date().toISOString().slice(0, 10),
  machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, memoryGiB: +(totalmem() / 2 ** 30).toFixed(1), node: process.version, loadAverageAtEnd: loadavg().map((x) => +x.toFixed(2)) },
  shape: { tokens: BATCHES * TOKENS_PER_BATCH, batches: BATCHES, tokensPerBatch: TOKENS_PER_BATCH, experts: E, topK: K, devices: D, pairs, policy: 'capacity-drop γ 1.25 (score priority)', workload: `uniform:E=${E}:k=${K}` },
  plainLoopSeconds: rows.map((r) => r.plain.seconds),
  simulate1WorkerSeconds: rows.map((r) => r.one.seconds),
  simulate2WorkersSeconds: rows.map((r) => r.two.seconds),
  cpuSeconds: { plainLoop: rows.map((r) => r.plain.cpu), workers1: rows.map((r) => r.one.cpu), workers2: rows.map((r) => r.two.cpu) },
  peakRssBytes: { workers1: Math.max(...rows.map((r) => r.one.rss)), workers2: Math.max(...rows.map((r) => r.two.rss)) },
  ratio: {
    workers1: +(median(rows.map((r) => r.one.seconds / r.plain.seconds))).toFixed(1),
    workers2: +(median(rows.map((r) => r.two.seconds / r.plain.seconds))).toFixed(1),
  },
  cpuRatio: {
    workers1: +(median(rows.map((r) => r.one.cpu / r.plain.cpu))).toFixed(1),
    workers2: +(median(rows.map((r) => r.two.cpu / r.plain.cpu))).toFixed(1),
  },
  identicalResults1vs2Workers: identical,
  summary: { speedup: s.speedup, droppedFraction: s.droppedFraction, latencyMsMean: s.latencyMs.mean, a2aBytes: s.a2aBytes },
}
const out = arg('out')
if (out) writeFileSync(out, JSON.stringify(result, null, 2) + '\n')
const f = (xs) => `${median(xs).toFixed(2)} s (runs: ${xs.map((x) => x.toFixed(2)).join(', ')})`
console.log(`| shape | ${result.shape.tokens.toLocaleString('en-US')} tokens (${BATCHES} × ${TOKENS_PER_BATCH}), E ${E}, k ${K}, ${D} devices, ${(pairs / 1e6).toFixed(1)} M pairs, ${result.shape.policy} |`)
console.log('|---|---|')
console.log(`| machine | ${result.machine.cpu}, ${result.machine.cores} cores, Node ${result.machine.node}, load average at end ${result.machine.loadAverageAtEnd.join(' / ')} |`)
console.log(`| plain id-draw-and-count loop | ${f(result.plainLoopSeconds)} |`)
console.log(`| \`moe-route simulate\`, whole process, 1 worker | ${f(result.simulate1WorkerSeconds)}, peak RSS ${(result.peakRssBytes.workers1 / 2 ** 20).toFixed(0)} MiB |`)
console.log(`| \`moe-route simulate\`, whole process, 2 workers | ${f(result.simulate2WorkersSeconds)}, peak RSS ${(result.peakRssBytes.workers2 / 2 ** 20).toFixed(0)} MiB |`)
console.log(`| ratio, wall (median of per-run ratios) | ${result.ratio.workers1}× (1 worker), ${result.ratio.workers2}× (2 workers) |`)
console.log(`| CPU seconds (user + system), median | plain ${median(result.cpuSeconds.plainLoop).toFixed(3)} s; simulate ${median(result.cpuSeconds.workers1).toFixed(2)} s (1 worker), ${median(result.cpuSeconds.workers2).toFixed(2)} s (2 workers); ratio ${result.cpuRatio.workers1}× / ${result.cpuRatio.workers2}× |`)
console.log(`| results identical for 1 and 2 workers | ${identical ? 'yes' : 'NO'} |`)
rmSync(dir, { recursive: true, force: true })
if (!identical) process.exitCode = 1
