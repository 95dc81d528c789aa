#!/usr/bin/env node
// The browser bundle of @moe-route/core + one policy (capacity drop), as an app bundler makes it
// from the published dist files: esbuild, platform browser, ESM, minified, tree-shaken, the
// "browser" and "import" conditions. Prints the minified and gzipped sizes and the largest
// inputs; exits 1 over the budget (default 120 kB minified, --budget-kb N). Run after a build.
import { build } from 'esbuild'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative } from 'node:path'
import { gzipSync } from 'node:zlib'

const root = new URL('..', import.meta.url).pathname
const budgetArg = process.argv.indexOf('--budget-kb')
const budgetKb = budgetArg > 0 ? Number(process.argv[budgetArg + 1]) : 120
const json = process.argv.includes('--json')

// What a browser app that routes with one policy imports (the README's "no RxJS needed" path).
const entry = `
import { createMoe, createRegistry } from '@moe-route/core'
import capacityDrop from '@moe-route/policy-capacity-drop'
const moe = createMoe({
  config: { model: { experts: 8, topK: 2, hidden: 1, intermediate: 1 }, policies: [{ use: 'capacity-drop', options: { capacityFactor: 1 } }] },
  registry: createRegistry([capacityDrop]),
})
const r = moe.route({ id: 0, tokens: 1, scores: new Float32Array([0.5, 0.2, 0.1, 0.1, 0.05, 0.03, 0.01, 0.01]) })
globalThis.result = r.telemetry.loadAfter
`
const dir = mkdtempSync(join(root, 'node_modules', '.measure-bundle-'))
try {
  const file = join(dir, 'entry.mjs')
  writeFileSync(file, entry)
  const out = await build({
    entryPoints: [file],
    bundle: true,
    minify: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    conditions: ['browser', 'import'],
    write: false,
    metafile: true,
    logLevel: 'error',
    absWorkingDir: root,
  })
  const code = out.outputFiles[0].contents
  const min = code.byteLength
  const gz = gzipSync(code, { level: 9 }).byteLength
  // bytes in the output by package
  const byPkg = new Map()
  for (const [input, { bytesInOutput }] of Object.entries(Object.values(out.metafile.outputs)[0].inputs)) {
    const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(input)
    const pkg = m ? m[1] : input.startsWith('packages/') ? input.split('/').slice(0, input.startsWith('packages/policies/') ? 3 : 2).join('/') : relative(root, input)
    byPkg.set(pkg, (byPkg.get(pkg) ?? 0) + bytesInOutput)
  }
  const top = [...byPkg].sort((a, b) => b[1] - a[1])
  const ok = min <= budgetKb * 1000
  if (json) console.log(JSON.stringify({ minifiedBytes: min, gzipBytes: gz, budgetBytes: budgetKb * 1000, ok, byPackage: Object.fromEntries(top) }))
  else {
    console.log(`browser bundle of @moe-route/core + @moe-route/policy-capacity-drop (esbuild, minified): ${(min / 1000).toFixed(1)} kB, ${(gz / 1000).toFixed(1)} kB gzipped; budget ${budgetKb} kB`)
    for (const [pkg, bytes] of top.slice(0, 8)) console.log(`  ${pkg.padEnd(40)} ${(bytes / 1000).toFixed(1).padStart(7)} kB`)
    console.log(ok ? 'within budget' : `OVER BUDGET by ${((min - budgetKb * 1000) / 1000).toFixed(1)} kB`)
  }
  process.exitCode = ok ? 0 : 1
} finally {
  rmSync(dir, { recursive: true, force: true })
}
