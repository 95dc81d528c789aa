#!/usr/bin/env node
// The README's test command: builds every package (turbo, cached), runs the whole vitest
// suite once (unit, integration, dist, WebGPU-on-lavapipe), and prints a closing line
// "N passed, N failed, N skipped".
import { spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const env = { ...process.env, TURBO_TELEMETRY_DISABLED: '1', DO_NOT_TRACK: '1', XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' }
const run = (cmd, args) => spawnSync(cmd, args, { stdio: 'inherit', env }).status ?? 1

if (!process.argv.includes('--no-build')) {
  const built = run('npx', ['turbo', 'run', 'build', '--output-logs=errors-only'])
  if (built !== 0) {
    console.error('build failed')
    process.exit(built)
  }
}
const dir = mkdtempSync(join(tmpdir(), 'moe-route-test-'))
const json = join(dir, 'results.json')
const extra = process.argv.slice(2).filter((a) => a !== '--no-build')
const status = run('npx', ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${json}`, ...extra])
try {
  const r = JSON.parse(readFileSync(json, 'utf8'))
  const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0)
  console.log(`\n${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`)
} catch {
  console.log('\n0 passed, 1 failed (no test results were written)')
}
rmSync(dir, { recursive: true, force: true })
process.exit(status)
