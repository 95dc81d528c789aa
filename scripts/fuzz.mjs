#!/usr/bin/env node
// `npm run fuzz [-- --seconds 600 --workers 2 --seed 1]`: fuzzes random stacks of every
// first-party policy (and the example entropy-drop policy) over generated routings for a time
// budget, with the invariants of @moe-route/testkit's fuzz.ts (shape, conservation, capacity,
// positive weights, the documented capacity for every γ > 0). Prints routings per second and
// every violation (with the seed that replays it); exits 1 on any violation. Needs a build.
import { cpus } from 'node:os'
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads'
import { manifestPackages } from './workspace.mjs'

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`)
  return i >= 0 ? Number(process.argv[i + 1]) : fallback
}
// every workspace package whose manifest declares a policy (first-party ones and the example)
const PACKAGES = manifestPackages()
  .filter(({ pkg }) => pkg['moe-route'].plugins?.some((p) => p.kind === 'policy'))
  .map(({ pkg }) => pkg.name)

async function fuzz(seconds, seed, onProgress) {
  const { isPlugin } = await import('@moe-route/core')
  const { fuzzStacks } = await import('@moe-route/testkit')
  const plugins = []
  for (const name of PACKAGES) {
    const mod = await import(name)
    for (const v of new Set(Object.values(mod))) if (isPlugin(v) && v.kind === 'policy') plugins.push(v)
  }
  return { names: plugins.map((p) => p.meta.name), report: fuzzStacks({ plugins, timeLimitMs: seconds * 1000, seed, onProgress }) }
}

if (!isMainThread) {
  const { report } = await fuzz(workerData.seconds, workerData.seed, (r) => parentPort.postMessage({ progress: { cases: r.cases, routings: r.routings } }))
  parentPort.postMessage({ report })
} else {
  const seconds = arg('seconds', 600)
  const workers = arg('workers', 1)
  const seed = arg('seed', Date.now() % 0x7fffffff)
  const started = performance.now()
  console.log(`fuzzing policy stacks for ${seconds} s on ${workers} worker(s), seed ${seed}; ${cpus().length} CPUs (${cpus()[0]?.model?.trim()}), Node ${process.version}`)
  let reports
  if (workers <= 1) {
    const { names, report } = await fuzz(seconds, seed, (r) => console.log(`  ${(r.elapsedMs / 1000).toFixed(0)} s: ${r.cases} batches, ${r.routings} routings, ${r.violations.length} violations`))
    console.log(`policies: ${names.join(', ')}`)
    reports = [report]
  } else {
    const live = new Map()
    reports = await Promise.all(
      Array.from({ length: workers }, (_, w) =>
        new Promise((resolve, reject) => {
          const worker = new Worker(new URL(import.meta.url), { workerData: { seconds, seed: seed + w * 1_000_003 } })
          worker.on('message', (m) => {
            if (m.report) resolve(m.report)
            else {
              live.set(w, m.progress)
              const total = [...live.values()].reduce((a, p) => ({ cases: a.cases + p.cases, routings: a.routings + p.routings }), { cases: 0, routings: 0 })
              console.log(`  ${((performance.now() - started) / 1000).toFixed(0)} s: ${total.cases} batches, ${total.routings} routings`)
            }
          })
          worker.on('error', reject)
        }),
      ),
    )
  }
  const elapsed = (performance.now() - started) / 1000
  const cases = reports.reduce((a, r) => a + r.cases, 0)
  const routings = reports.reduce((a, r) => a + r.routings, 0)
  const violations = reports.flatMap((r) => r.violations.map((v) => ({ ...v, seed: r.seed })))
  console.log(`\n${cases} batches (router + a stack of 1-3 policies each), ${routings} routings checked in ${elapsed.toFixed(1)} s: ${Math.round(routings / elapsed)} routings/s, ${Math.round(cases / elapsed)} batches/s`)
  console.log(`${violations.length} violations`)
  for (const v of violations) console.log(`  ${v.policy} [${v.kind}] seed ${v.seed}: ${v.message}\n    case: ${v.case}`)
  process.exit(violations.length > 0 ? 1 : 0)
}
