#!/usr/bin/env node
// The DeepSeek-scale 3×3×2 sweep through the CLI: capacity factor × devices × policy stack on
// deepseek-scale.json (1,048,576 tokens, E 256, k 8 per point). Writes the table
// (results/sweep-deepseek-scale.txt), the HTML chart (results/sweep-deepseek-scale.html) and,
// where a Chromium is found (CHROMIUM_BIN or `chromium` on PATH), a PNG of it; prints shape,
// machine and wall time. Needs the built CLI (npx turbo run build).
//   node packages/simulator/bench/sweep.mjs [--workers 1]
import { spawnSync } from 'node:child_process'
import { existsSync, writeFileSync } from 'node:fs'
import { cpus, loadavg } from 'node:os'
import { delimiter, dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`)
  return i > 0 ? process.argv[i + 1] : dflt
}
const here = dirname(fileURLToPath(import.meta.url))
const root = resolve(here, '../../..')
const bin = join(root, 'packages/cli/dist/bin.js')
const results = join(here, 'results')
const html = join(results, 'sweep-deepseek-scale.html')
const sweeps = ['capacityFactor=0.9,1,1.25', 'devices=64,128,256', 'policies=capacity-drop,device-capacity']
// run in this folder with relative paths: the report's title names the config as given
const args = [bin, 'simulate', '-c', 'deepseek-scale.json', ...sweeps.flatMap((s) => ['--sweep', s]), '--workers', arg('workers', '1'), '--report', 'results/sweep-deepseek-scale.html']
const t0 = performance.now()
const r = spawnSync(process.execPath, args, { cwd: here, encoding: 'utf8', maxBuffer: 1 << 26, stdio: ['ignore', 'pipe', 'inherit'] })
const seconds = (performance.now() - t0) / 1000
if (r.status !== 0) throw new Error(`simulate --sweep exited ${r.status}`)
writeFileSync(join(results, 'sweep-deepseek-scale.txt'), r.stdout)
process.stdout.write(r.stdout)
console.log(`\nshape: 18 points, each 1,048,576 tokens (128 × 8192), E 256, k 8, uniform routing; sweeps ${sweeps.join(' × ')}`)
console.log(`machine: ${cpus()[0]?.model ?? 'unknown'}, ${cpus().length} cores (shared), Node ${process.version}, load average at end ${loadavg().map((x) => x.toFixed(2)).join(' / ')}`)
console.log(`wall: ${seconds.toFixed(1)} s for the whole sweep (one process)`)

const chromium = process.env.CHROMIUM_BIN ?? (process.env.PATH ?? '').split(delimiter).map((d) => join(d, 'chromium')).find((p) => existsSync(p))
if (!chromium) {
  console.log('no Chromium found (set CHROMIUM_BIN): PNG not made')
} else {
  const { chromium: pw } = await import('playwright-core')
  const browser = await pw.launch({ executablePath: chromium, headless: true })
  try {
    const page = await browser.newPage({ viewport: { width: 960, height: 720 } })
    await page.goto(pathToFileURL(html).href)
    await page.screenshot({ path: join(results, 'sweep-deepseek-scale.png'), fullPage: true })
    console.log('wrote results/sweep-deepseek-scale.png')
  } finally {
    await browser.close()
  }
}
