/**
 * Runs the example as `npm start` does, in a child process (a native WebGPU crash must not
 * take the test worker down). With no adapter the test is skipped with a message, except
 * under CI (or MOE_ROUTE_REQUIRE_WEBGPU=1), where a missing adapter is a failure.
 */
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('../..', import.meta.url))
const required = Boolean(process.env.CI) || process.env.MOE_ROUTE_REQUIRE_WEBGPU === '1'

describe('examples/mixtral-layer-webgpu', () => {
  it('runs the layer with a reroute → capacity-drop stack on the WebGPU device, matching the CPU reference', { timeout: 450_000 }, (ctx) => {
    expect(existsSync(`${root}/packages/backends/webgpu/dist/index.js`), 'run the build first (npm test does)').toBe(true)
    const r = spawnSync(process.execPath, [fileURLToPath(new URL('./main.mjs', import.meta.url)), '--json'], {
      encoding: 'utf8',
      env: { ...process.env, NODE_OPTIONS: '', XDG_RUNTIME_DIR: process.env.XDG_RUNTIME_DIR ?? '/tmp' },
      timeout: 420_000,
    })
    if (r.status === 2 && /No WebGPU adapter/.test(r.stderr)) {
      if (required) throw new Error(`a WebGPU adapter is required here (CI): ${r.stderr.trim()}`)
      return ctx.skip(`no WebGPU adapter: ${r.stderr.trim()}`)
    }
    expect(r.status, `main.mjs exited with ${r.status} (signal ${r.signal}):\n${r.stderr}`).toBe(0)
    const out = JSON.parse(r.stdout.trim().split('\n').pop()!)
    expect(out.adapter).toEqual(expect.any(String))
    expect(out.batches).toHaveLength(4)
    // the whole configured layer runs on the device: both policies through their GPU lowerings
    expect(out.stages.map((s: { stage: string; where: string }) => `${s.stage}@${s.where}`)).toEqual([
      'router:softmax-top-k@device',
      'policy:reroute@device',
      'policy:capacity-drop@device',
      'dispatch:exact-size@device',
      'experts@device',
    ])
    for (const b of out.batches) {
      expect(b.backend).toBe('webgpu')
      expect(b.fallback).toBeNull()
      expect(b.capacity).toEqual([20, 24]) // ⌈1.25·2·64/8⌉ for reroute, ⌈1.5·2·64/8⌉ for capacity-drop
      expect(b.maxLoadAfter).toBeLessThanOrEqual(24)
      expect(b.maxMeanAfter).toBeLessThanOrEqual(b.maxMeanBefore)
      expect(b.hostRoundTrips).toEqual({})
      expect(b.dropped).toBe(b.cpuDropped)
      // f16 weights on the GPU (the backend's default) against f32 on the CPU
      expect(b.relL2VsCpu).toBeLessThan(2e-3)
    }
  })
})
