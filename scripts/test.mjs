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
// Is there a WebGPU adapter (a Vulkan driver: a GPU's, or Mesa lavapipe on the CPU)? Without one
// the WebGPU tests skip themselves (unless MOE_ROUTE_REQUIRE_WEBGPU or CI is set, where they
// fail) and the run ends with one line saying how to enable them.
const adapter = await import('../packages/backends/webgpu/dist/index.js')
  .then((m) => m.probeAdapter())
  .catch(() => null)
const dir = mkdtempSync(join(tmpdir(), 'moe-route-test-'))
const json = join(dir, 'results.json')
const extra = process.argv.slice(2).filter((a) => a !== '--no-build')
const status = run('npx', ['vitest', 'run', '--reporter=default', '--reporter=json', `--outputFile.json=${json}`, ...extra])
try {
  const r = JSON.parse(readFileSync(json, 'utf8'))
  const skipped = (r.numPendingTests ?? 0) + (r.numTodoTests ?? 0)
  if (!adapter) console.log('\nWebGPU tests skipped: no WebGPU adapter (Vulkan driver) here. To run them on the CPU: sudo bash scripts/install-lavapipe.sh && export XDG_RUNTIME_DIR=/tmp')
  console.log(`\n${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`)
} catch {
  console.log('\n0 passed, 1 failed (no test results were written)')
}
rmSync(dir, { recursive: true, force: true })
process.exit(status)
