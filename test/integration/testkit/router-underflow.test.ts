/**
 * The router's rule for picks whose weight underflows (issue 18: a pair of weight 0 must take
 * no capacity): on a real WebGPU device (Mesa lavapipe in CI), the lowered softmax-top-k leaves
 * out exactly the picks the host router leaves out — weights below the smallest normal f32,
 * where GPUs may flush subnormals — with and without top-k renormalisation.
 */
import { createMoe, pairsOf, type LayerResult } from '@moe-route/core'
import { cpuBackend } from '@moe-route/backend-cpu'
import { randomHidden } from '@moe-route/workloads'
import { probeAdapter, webgpuBackend } from '@moe-route/backend-webgpu'
import { afterAll, describe, expect, it, vi } from 'vitest'

vi.setConfig({ testTimeout: 180_000 })
const required = Boolean(process.env.CI) || process.env.MOE_ROUTE_REQUIRE_WEBGPU === '1'
const adapter = await probeAdapter()

describe.skipIf(!adapter && !required)('softmax-top-k: underflowing picks on the device and on the host', () => {
  const engines: { dispose(): Promise<void> }[] = []
  afterAll(async () => {
    for (const e of engines) await e.dispose()
  })
  // per token, the logit gap of the second (and third) pick: normal, subnormal, zero in f32
  const gaps = [0, 1, 80, 86, 88, 95, 104, 110, 150, 200, 400]
  const E = 8
  const T = gaps.length
  const logits = new Float32Array(T * E).fill(-1000)
  gaps.forEach((g, t) => {
    logits[t * E + (t % E)] = 0
    logits[t * E + ((t + 3) % E)] = -g
    logits[t * E + ((t + 5) % E)] = -g - 1
  })
  const pairs = (r: LayerResult) => pairsOf(r.routing).map((p) => `${p.token}:${p.expert}`).sort()

  for (const normalizeTopK of [false, true]) {
    it(`normalizeTopK ${normalizeTopK}: same pairs, every kept weight > 0`, async () => {
      const model = { experts: E, topK: 3, hidden: 16, intermediate: 16, normalizeTopK }
      const make = (backend: string) => {
        const e = createMoe({ config: { model, backend: { use: backend, ...(backend === 'webgpu' ? { options: { weightsDtype: 'f32' } } : {}) }, weights: { seed: 1, std: 0.05 } }, plugins: [webgpuBackend, cpuBackend] })
        engines.push(e)
        return e
      }
      const batch = { id: 0, tokens: T, hidden: randomHidden(T, 16, 3), logits }
      const gpu = await make('webgpu').forward(batch)
      const cpu = await make('cpu').forward(batch)
      expect(pairs(gpu)).toEqual(pairs(cpu))
      for (const r of [gpu, cpu]) expect(pairsOf(r.routing).every((p) => p.weight > 0)).toBe(true)
      // the far-off picks are gone, the near ones kept
      expect(pairs(cpu)).toContain(`0:${3 % E}`)
      expect(pairs(cpu)).not.toContain(`${T - 1}:${(T - 1 + 3) % E}`)
    })
  }
})
