#!/usr/bin/env node
// Bundles scripts/measure.ts with esbuild (resolving workspace sources) and runs it.
import { execFileSync } from 'node:child_process'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const here = dirname(fileURLToPath(import.meta.url))
const outfile = join(here, '..', 'scripts', '.measure.bundle.mjs')
await build({
  entryPoints: [join(here, 'measure.ts')],
  bundle: true,
  platform: 'node',
  format: 'esm',
  outfile,
  conditions: ['@moe-route/source'],
  external: ['tsyringe', 'rxjs', 'reflect-metadata', 'ajv', 'semver', 'mistral-tokenizer-js'],
  logLevel: 'warning',
})
execFileSync(process.execPath, [outfile, ...process.argv.slice(2)], { stdio: 'inherit', env: process.env })
