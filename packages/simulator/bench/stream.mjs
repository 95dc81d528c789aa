#!/usr/bin/env node
// Streaming check: a token-level routing record (vLLM routed-experts layout, [tokens, 1, k]
// int16 .npy) of N tokens, written here in chunks, simulated by `moe-route simulate` with
// capacity drop; peak memory of the whole process against N. Default N: 10 M and 100 M tokens.
//   node packages/simulator/bench/stream.mjs [--tokens 10000000,100000000] [--out results.json]
import { spawnSync } from 'node:child_process'
import { closeSync, mkdtempSync, openSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs'
import { cpus, tmpdir } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? process.argv[i + 1] : dflt
}
const SIZES = arg('tokens', '10000000,100000000').split(',').map(Number)
const E = 8
const K = 2
const TPB = 65536
const root = resolve(dirname(fileURLToPath(import.meta.url)), '../../..')
const bin = join(root, 'packages/cli/dist/bin.js')
const dir = mkdtempSync(join(tmpdir(), 'moe-route-stream-'))
const preload = join(dir, 'maxrss.mjs')
writeFileSync(preload, "process.on('exit', () => process.stderr.write(`\\nMAXRSS_KB ${process.resourceUsage().maxRSS}\\n`))\n")

/** Writes an .npy of shape [tokens, 1, K] int16: K distinct uniform experts per token (xorshift). */
function writeRecord(path, tokens) {
  let header = `{'descr': '<i2', 'fortran_order': False, 'shape': (${tokens}, 1, ${K}), }`
  const pad = 64 - ((10 + header.length + 1) % 64)
  header += ' '.repeat(pad % 64) + '\n'
  const fd = openSync(path, 'w')
  const pre = Buffer.alloc(10)
  pre.write('\x93NUMPY', 0, 'latin1')
  pre[6] = 1
  pre[7] = 0
  pre.writeUInt16LE(header.length, 8)
  writeSync(fd, pre)
  writeSync(fd, Buffer.from(header, 'latin1'))
  let x = 2463534242
  const chunk = 1 << 20
  const buf = new Int16Array(chunk * K)
  for (let t = 0; t < tokens; t += chunk) {
    const n = Math.min(chunk, tokens - t)
    for (let i = 0; i < n; i++) {
      x ^= x << 13
      x ^= x >>> 17
      x ^= x << 5
      const a = (x >>> 0) % E
      x ^= x << 13
      x ^= x >>> 17
      x ^= x << 5
      const b = (a + 1 + ((x >>> 0) % (E - 1))) % E
      buf[i * K] = a
      buf[i * K + 1] = b
    }
    writeSync(fd, Buffer.from(buf.buffer, 0, n * K * 2))
  }
  closeSync(fd)
}

const results = []
for (const tokens of SIZES) {
  const trace = join(dir, `routed-${tokens}.npy`)
  writeRecord(trace, tokens)
  const config = join(dir, `stream-${tokens}.json`)
  writeFileSync(
    config,
    JSON.stringify({
      model: { experts: E, topK: K, hidden: 4096, intermediate: 14336, normalizeTopK: true },
      devices: 8,
      policies: [{ use: 'capacity-drop', options: { capacityFactor: 1.0 } }],
      workload: { source: trace, tokensPerBatch: TPB, batches: Math.ceil(tokens / TPB), seed: 1 },
      seed: 1,
    }),
  )
  const t0 = performance.now()
  const r = spawnSync(process.execPath, ['--import', preload, bin, 'simulate', '-c', config, '--json'], { encoding: 'utf8', maxBuffer: 1 << 26 })
  const seconds = (performance.now() - t0) / 1000
  if (r.status !== 0) throw new Error(`simulate exited ${r.status}: ${r.stderr}`)
  const s = JSON.parse(r.stdout).summary
  const row = { tokens, fileBytes: statSync(trace).size, seconds: +seconds.toFixed(1), peakRssMiB: Math.round(Number(/MAXRSS_KB (\d+)/.exec(r.stderr)[1]) / 1024), simulatedTokens: s.tokens, batches: s.batches, droppedFraction: s.droppedFraction }
  results.push(row)
  rmSync(trace)
  process.stderr.write(`${JSON.stringify(row)}\n`)
}
rmSync(dir, { recursive: true, force: true })
const out = arg('out')
if (out) writeFileSync(out, JSON.stringify({ date: new Date().toISOString().slice(0, 10), machine: { cpu: cpus()[0]?.model, cores: cpus().length, node: process.version }, shape: { experts: E, topK: K, tokensPerBatch: TPB, devices: 8, policy: 'capacity-drop γ 1.0' }, results }, null, 2) + '\n')
console.log('| tokens | record file | simulated tokens | wall | peak RSS |')
console.log('|---|---|---|---|---|')
for (const r of results) console.log(`| ${r.tokens.toLocaleString('en-US')} | ${(r.fileBytes / 2 ** 20).toFixed(0)} MiB | ${r.simulatedTokens.toLocaleString('en-US')} | ${r.seconds} s | ${r.peakRssMiB} MiB |`)
