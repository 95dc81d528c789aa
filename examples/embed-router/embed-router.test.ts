import { isMoeError } from '@moe-route/core'
import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { createLayerRouter, executePlan, hostLogits, toyExpert } from './embed.mjs'

const o = { experts: 8, topK: 2, hidden: 4, devices: 2, capacityFactor: 1.0 }

describe('examples/embed-router', () => {
  it('turns host logits into a plan whose execution equals a per-token loop over the kept pairs', () => {
    const router = createLayerRouter(o)
    const tokens = 64
    const r = router.route({ id: 0, tokens, logits: hostLogits(tokens, o.experts, 7) })
    const cap = r.telemetry.policies[0].capacity!
    expect(cap).toBe(16) // ⌈1.0·2·64/8⌉
    expect(Math.max(...r.plan.counts)).toBeLessThanOrEqual(cap)
    expect(r.dropped.length).toBeGreaterThan(0) // expert 0 is favoured and overflows
    expect(r.plan.rowToken.length + r.dropped.length).toBe(tokens * o.topK)
    const x = Float32Array.from({ length: tokens * o.hidden }, (_, i) => Math.cos(i))
    const y = executePlan(r.plan, x, o.hidden, toyExpert)
    const { routing } = r
    for (let t = 0; t < tokens; t++) {
      for (let h = 0; h < o.hidden; h++) {
        let want = 0
        for (let j = 0; j < routing.slots; j++) {
          const e = routing.expertIds[t * routing.slots + j]
          if (e >= 0) want += routing.weights[t * routing.slots + j] * x[t * o.hidden + h] * (e + 1)
        }
        expect(y[t * o.hidden + h]).toBeCloseTo(want, 5)
      }
    }
  })

  it('reports device traffic for the host layout', () => {
    const router = createLayerRouter({ ...o, capacityFactor: 4 })
    const tokens = 32
    const all0 = router.route({ id: 1, tokens, logits: hostLogits(tokens, o.experts, 3), sourceDevice: new Int32Array(tokens) })
    const sent = Array.from(all0.plan.traffic.sendRows)
    expect(sent[2] + sent[3]).toBe(0) // nothing leaves device 1: no tokens live there
    expect(all0.plan.traffic.bytesCrossDevice).toBe(sent[1] * o.hidden * 2)
  })

  it('rejects a bad option when the router is built, naming the plugin', () => {
    let error: unknown
    try {
      createLayerRouter({ ...o, capacityFactor: -1 })
    } catch (e) {
      error = e
    }
    expect(isMoeError(error) && error.details.issues?.[0]).toMatchObject({ path: '/policies/0/options/capacityFactor', plugin: 'capacity-drop' })
  })

  it('npm start runs main.mjs against the built packages', () => {
    const root = fileURLToPath(new URL('../..', import.meta.url))
    expect(existsSync(`${root}/packages/core/dist/index.js`), 'run the build first (npm test does)').toBe(true)
    const r = spawnSync(process.execPath, [fileURLToPath(new URL('./main.mjs', import.meta.url))], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } })
    expect(r.stderr).toBe('')
    expect(r.status).toBe(0)
    const lines = r.stdout.trim().split('\n')
    expect(lines).toHaveLength(3)
    for (const l of lines) expect(l).toMatch(/^batch \d: rows per expert \[(\d+ ){7}\d+\], capacity 40, dropped \d+\/256 pairs, \d+ bytes cross-device, output\[0\.\.3\] /)
  })
})
