import { describe, expect, it } from 'vitest'
import { createRegistry, type Routing } from '@moe-route/core'
import pkg from '../package.json' with { type: 'json' }
import { capacityPolicies, defineCapacityPolicy } from './index.js'

describe('defineCapacityPolicy', () => {
  const schema = { type: 'object', properties: { capacityFactor: { type: 'number', exclusiveMinimum: 0 } }, required: ['capacityFactor'], additionalProperties: false }
  const keepAll = defineCapacityPolicy<{ capacityFactor: number }>({
    name: 'keep-all',
    description: 'keeps every pair',
    schema,
    defaultOptions: { capacityFactor: 1.5 },
    apply: (routing: Routing) => ({ routing, dropped: [] }),
    check: (options) => {
      if (options.capacityFactor > 10) throw new Error('too large')
    },
  })

  it('makes a plugin whose meta comes from this package.json and a factory merging defaults', () => {
    expect(keepAll.plugin.kind).toBe('policy')
    expect(keepAll.plugin.meta).toMatchObject({ name: 'keep-all', package: pkg.name, version: pkg.version, core: pkg.peerDependencies['@moe-route/core'] })
    expect(keepAll.plugin.meta.device).toBeUndefined() // no lowering given
    const policy = keepAll.create({})
    expect(policy.options).toEqual({ capacityFactor: 1.5 })
    expect(policy.name).toBe('keep-all')
    expect(policy.lower).toBeUndefined()
  })

  it('validates options and runs the check through a registry', () => {
    const registry = createRegistry([keepAll.plugin])
    const context = { model: { experts: 4, topK: 2, hidden: 8, intermediate: 16, normalizeTopK: false }, devices: 1, seed: 0 }
    expect(() => registry.create('policy', 'keep-all', { capacityFactor: -1 }, context)).toThrow(/capacityFactor/)
    expect(() => registry.create('policy', 'keep-all', { capacityFactor: 11 }, context)).toThrow(/too large/)
    expect(registry.create('policy', 'keep-all', { capacityFactor: 2 }, context).name).toBe('keep-all')
  })

  it('every policy of the package is made by it: same package meta, wgsl declared where the policy lowers', () => {
    expect(capacityPolicies.map((p) => p.meta.name)).toEqual(['capacity-drop', 'expanded-drop', 'reroute', 'spare-capacity-reroute', 'device-capacity', 'expert-drop'])
    for (const p of capacityPolicies) {
      expect(p.meta).toMatchObject({ package: pkg.name, version: pkg.version })
      expect(p.meta.device).toEqual(['wgsl'])
      expect(p.meta.docs?.url).toMatch(new RegExp(`packages/policies/capacity#${p.meta.name}$`))
    }
  })
})
