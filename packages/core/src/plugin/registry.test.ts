import { describe, expect, it } from 'vitest'
import { definePolicy } from './define.js'
import { PluginRegistry, callPlugin, checkPluginShape } from './registry.js'
import { isMoeError } from '../errors.js'

const make = (over: Partial<{ core: string; name: string; defaults: object; pkg: string }> = {}) =>
  definePolicy<{ factor: number; mode: 'a' | 'b' }>({
    meta: {
      name: over.name ?? 'demo',
      package: over.pkg ?? 'moe-route-policy-demo',
      version: '1.0.0',
      core: over.core ?? '^0.1.0',
      schema: {
        type: 'object',
        properties: { factor: { type: 'number', exclusiveMinimum: 0 }, mode: { type: 'string', enum: ['a', 'b'] } },
        required: ['factor', 'mode'],
        additionalProperties: false,
      },
      defaultOptions: (over.defaults ?? { factor: 1, mode: 'a' }) as { factor: number; mode: 'a' | 'b' },
    },
    create: (o) => ({ name: 'demo', apply: (routing) => ({ routing, dropped: [], capacity: o.factor }) }),
  })

const codeOf = (fn: () => unknown) => {
  try {
    fn()
  } catch (e) {
    if (isMoeError(e)) return e
    throw e
  }
  throw new Error('expected a MoeError')
}

describe('PluginRegistry', () => {
  it('registers, finds by name and by npm package, and lists', () => {
    const r = new PluginRegistry().register(make())
    expect(r.get('policy', 'demo').meta.name).toBe('demo')
    expect(r.get('policy', 'moe-route-policy-demo').meta.name).toBe('demo')
    expect(r.list('policy')).toEqual([expect.objectContaining({ name: 'demo', version: '1.0.0', source: 'built-in' })])
  })

  it('rejects a plugin for another core range', () => {
    const e = codeOf(() => new PluginRegistry().register(make({ core: '^2.0.0' })))
    expect(e.code).toBe('MOE_ROUTE_ERR_PLUGIN_VERSION_MISMATCH')
    expect(e.details.plugin).toBe('demo')
    expect(e.message).toContain('^2.0.0')
  })

  it('rejects defaults that fail the plugin schema', () => {
    const e = codeOf(() => new PluginRegistry().register(make({ defaults: { factor: -1, mode: 'a' } })))
    expect(e.code).toBe('MOE_ROUTE_ERR_PLUGIN_INVALID')
    expect(e.message).toContain('/defaultOptions/factor')
  })

  it('rejects objects that are not plugins', () => {
    expect(codeOf(() => checkPluginShape({ meta: {} }, 'left-pad')).code).toBe('MOE_ROUTE_ERR_PLUGIN_INVALID')
    expect(codeOf(() => new PluginRegistry().register(42)).message).toContain('not an object')
  })

  it('rejects a second plugin with the same name from another package', () => {
    const r = new PluginRegistry().register(make())
    r.register(make()) // same package and version: no-op
    expect(codeOf(() => r.register(make({ pkg: 'other' }))).code).toBe('MOE_ROUTE_ERR_PLUGIN_DUPLICATE')
  })

  it('validates options: merged with defaults, path and plugin named', () => {
    const r = new PluginRegistry().register(make())
    const plugin = r.get('policy', 'demo')
    expect(r.resolveOptions(plugin, { factor: 2 })).toEqual({ factor: 2, mode: 'a' })
    const e = codeOf(() => r.resolveOptions(plugin, { factor: 0, mode: 'c' }, '/policies/0/options'))
    expect(e.code).toBe('MOE_ROUTE_ERR_PLUGIN_OPTIONS_INVALID')
    expect(e.details.plugin).toBe('demo')
    expect(e.message).toContain('/policies/0/options/factor')
    expect(e.message).toContain('/policies/0/options/mode: must be one of "a", "b"')
    expect(codeOf(() => r.resolveOptions(plugin, { extra: 1 })).message).toContain('/options/extra: is not a known field')
  })

  it('unknown plugins list what is registered', () => {
    const r = new PluginRegistry().register(make())
    const e = codeOf(() => r.get('policy', 'nope', '/policies/3/use'))
    expect(e.code).toBe('MOE_ROUTE_ERR_PLUGIN_UNKNOWN')
    expect(e.message).toContain('demo')
    expect(e.details.path).toBe('/policies/3/use')
  })

  it('wraps a throwing hook with the plugin and hook names', () => {
    const e = codeOf(() =>
      callPlugin('demo', 'apply', () => {
        throw new TypeError('boom')
      }),
    )
    expect(e.code).toBe('MOE_ROUTE_ERR_PLUGIN_FAILED')
    expect(e.details).toMatchObject({ plugin: 'demo', hook: 'apply' })
  })
})
