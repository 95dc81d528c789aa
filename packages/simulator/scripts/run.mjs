#!/usr/bin/env node
// Bundles a TypeScript script of this package with esbuild (workspace sources through the
// "@moe-route/source" condition) and runs it with Node. The bundle goes to a temporary folder
// next to a link to @moe-route/workloads' data folder, which the workloads find by walking up.
import { execFileSync } from 'node:child_process'
import { mkdirSync, rmSync, symlinkSync } from 'node:fs'
import { createRequire } from 'node:module'
import { tmpdir } from 'node:os'
import { basename, dirname, join, resolve } from 'node:path'
import { build } from 'esbuild'

const [script, ...args] = process.argv.slice(2)
if (!script) throw new Error('usage: node scripts/run.mjs <script.ts> [args]')
const require = createRequire(import.meta.url)
const workloadsData = join(dirname(require.resolve('@moe-route/workloads/package.json')), 'data')
const dir = join(tmpdir(), `moe-route-simulator-${process.pid}`)
mkdirSync(dir, { recursive: true })
try {
  symlinkSync(workloadsData, join(dir, 'data'))
  const outfile = join(dir, basename(script).replace(/\.ts$/, '.mjs'))
  await build({
    entryPoints: [resolve(script)],
    bundle: true,
    platform: 'node',
    format: 'esm',
    outfile,
    conditions: ['@moe-route/source'],
    banner: { js: "import { createRequire as __cr } from 'node:module'; const require = __cr(import.meta.url);" },
    logLevel: 'warning',
  })
  execFileSync(process.execPath, [outfile, ...args], { stdio: 'inherit', env: process.env, cwd: process.cwd() })
} finally {
  rmSync(dir, { recursive: true, force: true })
}
