import { createMoe, createRegistry, isMoeError, isPlugin } from '@moe-route/core'
import { randomLogits } from '@moe-route/core/testing'
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import dynamicGating, { isDynamicGatingPlan, PACKAGE_NAME, PACKAGE_VERSION } from './index.js'

const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { name: string; version: string }
const model = { experts: 8, topK: 2, hidden: 16, intermediate: 32, normalizeTopK: false }
const ctx = { model, devices: 1, seed: 1 }

function errorOf(fn: () => unknown): unknown {
  try {
    fn()
  } catch (e) {
    return e
  }
  throw new Error('expected a throw')
}

describe('dynamic-gating plugin', () => {
  it('is a dispatcher plugin whose meta matches package.json', () => {
    expect(isPlugin(dynamicGating)).toBe(true)
    expect(dynamicGating.kind).toBe('dispatcher')
    expect(dynamicGating.meta.name).toBe('dynamic-gating')
    expect(PACKAGE_NAME).toBe(pkg.name)
    expect(PACKAGE_VERSION).toBe(pkg.version)
    expect(dynamicGating.meta.package).toBe(pkg.name)
  })

  it('registers and validates options through the registry', () => {
    const registry = createRegistry([dynamicGating])
    const d = registry.create('dispatcher', 'dynamic-gating', { mode: 'static', capacityFraction: 0.05 }, ctx)
    expect(d.name).toBe('dynamic-gating')
    const bad = errorOf(() => registry.create('dispatcher', 'dynamic-gating', { mode: 'padded', capacityFactor: -1 }, ctx))
    expect(isMoeError(bad) && bad.code).toBe('MOE_ROUTE_ERR_PLUGIN_OPTIONS_INVALID')
    expect(isMoeError(bad) && bad.details.issues?.map((i) => i.path).sort()).toEqual([
      '/dispatcher/options/capacityFactor',
      '/dispatcher/options/mode',
    ])
    const extra = errorOf(() => registry.create('dispatcher', '@moe-route/policy-dynamic-gating', { capcityFactor: 1 }, ctx))
    expect(isMoeError(extra) && extra.code).toBe('MOE_ROUTE_ERR_PLUGIN_OPTIONS_INVALID')
  })

  it('runs inside MoeEngine from a config', () => {
    for (const options of [{}, { mode: 'static', capacityFactor: 0.25 }]) {
      const engine = createMoe({ plugins: [dynamicGating], config: { model, dispatcher: { use: 'dynamic-gating', options } } })
      const result = engine.route({ id: 1, tokens: 32, logits: randomLogits(32, 8, 3) })
      expect(isDynamicGatingPlan(result.plan)).toBe(true)
      expect(result.telemetry.dispatch.mode).toBe(options.mode ?? 'dynamic')
      if (options.mode === 'static') {
        expect(result.plan.capacity).toBe(8)
        expect(result.telemetry.dispatch.paddingRows).toBe(result.plan.paddingRows)
        expect(result.dropped.every((d) => d.reason === 'static-overflow')).toBe(true)
        expect(result.telemetry.droppedPairs).toBe(result.plan.dropped.length)
      } else {
        expect(result.plan.rowToken.length).toBe(64)
        expect(result.dropped).toEqual([])
      }
    }
  })
})
