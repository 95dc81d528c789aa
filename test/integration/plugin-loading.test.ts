/**
 * Plugins named by npm package in a config, loaded by the real CLI: the happy path and each
 * failure (unknown package, wrong core range, invalid options, a plugin that throws while
 * importing, creating or routing), each a clear error that names the plugin.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { join } from 'node:path'
import { ROOT, cli, createProject, policyPackage, policySource, type Project } from './helpers.js'

let project: Project
const model = { experts: 4, topK: 2, hidden: 8, intermediate: 8 }
// 6 tokens that all prefer experts 0 and 1: capacity ⌈0.5·2·6/4⌉ = 2 forces drops.
const input = {
  experts: 4,
  topK: 2,
  scores: [
    [0.5, 0.3, 0.1, 0.1],
    [0.4, 0.4, 0.1, 0.1],
    [0.7, 0.2, 0.05, 0.05],
    [0.3, 0.3, 0.2, 0.2],
    [0.6, 0.35, 0.03, 0.02],
    [0.45, 0.25, 0.2, 0.1],
  ],
}

/** Writes a config with the given policies and returns its path. */
const config = (name: string, policies: unknown[], extra: object = {}) => project.write(`${name}.json`, { model, policies, ...extra })
const route = (configFile: string) => cli(['route', '-i', 'input.json', '-c', configFile, '--json'], project.dir)

beforeAll(() => {
  project = createProject()
  project.installBuilt('moe-route-policy-entropy-drop', join(ROOT, 'examples/custom-policy'))
  project.addPackage('moe-route-policy-old-core', policySource('old-core', { core: '^0.0.1' }), policyPackage('old-core', { core: '^0.0.1' }))
  project.addPackage('moe-route-policy-fails-create', policySource('fails-create', { throwIn: 'create' }), policyPackage('fails-create'))
  project.addPackage('moe-route-policy-fails-apply', policySource('fails-apply', { throwIn: 'apply' }), policyPackage('fails-apply'))
  project.addPackage('moe-route-policy-not-a-plugin', `export default { meta: { name: 'not-a-plugin' }, create() {} }\n`, policyPackage('not-a-plugin'))
  project.addPackage('moe-route-policy-fails-import', `import 'a-dependency-that-is-not-installed'\nexport default {}\n`, policyPackage('fails-import'))
  project.addPackage('@acme/moe-route-policy-keep', policySource('keep', { package: '@acme/moe-route-policy-keep' }), policyPackage('keep'))
  project.write('input.json', input)
})
afterAll(() => project.dispose())

describe('plugins loaded from npm packages by the CLI', () => {
  it('loads a policy named by its package in policies[].use and routes with it', async () => {
    const r = await route(config('ok', [{ use: 'moe-route-policy-entropy-drop', options: { capacityFactor: 0.5 } }]))
    expect(r.err).toBe('')
    expect(r.code).toBe(0)
    const out = JSON.parse(r.out)
    expect(out.capacity).toBe(2)
    expect(out.load).toEqual([2, 2, 2, 2].map((_, e) => Math.min(2, out.loadBefore[e])))
    const dropped = out.tokens.flatMap((t: { dropped: unknown[] }) => t.dropped)
    expect(dropped.length).toBeGreaterThan(0)
    expect(dropped.every((d: [number, number, string]) => d[2] === 'capacity')).toBe(true)
  })

  it('loads packages listed in plugins[] (scoped too) and uses them by short name', async () => {
    const r = await route(config('listed', [{ use: 'keep' }, { use: 'entropy-drop' }], { plugins: ['@acme/moe-route-policy-keep', 'moe-route-policy-entropy-drop'] }))
    expect(r.err).toBe('')
    expect(r.code).toBe(0)
  })

  it('unknown package: MOE_ROUTE_ERR_PLUGIN_UNKNOWN naming it, where it looked and how to install it', async () => {
    const r = await route(config('unknown', [{ use: 'moe-route-policy-nope' }]))
    expect(r.code).toBe(1)
    expect(r.err).toMatch(/^MOE_ROUTE_ERR_PLUGIN_UNKNOWN: \/policies\/0\/use: plugin package moe-route-policy-nope is not installed \(looked in node_modules from .+ upwards\); install it with: npm install moe-route-policy-nope$/)
    const v = await cli(['validate', '-c', 'unknown.json'], project.dir)
    expect(v.code).toBe(1)
    expect(v.err.split('\n')).toEqual([expect.stringMatching(/^MOE_ROUTE_ERR_PLUGIN_UNKNOWN: unknown\.json: \/policies\/0\/use: plugin package moe-route-policy-nope is not installed/)])
  })

  it('unknown plugin name: lists what is registered', async () => {
    const r = await route(config('unknown-name', [{ use: 'entropy-dorp' }]))
    expect(r.code).toBe(1)
    expect(r.err).toMatch(/MOE_ROUTE_ERR_CONFIG_INVALID: .*\n\s+\/policies\/0\/use: unknown policy plugin 'entropy-dorp' \(known: /)
  })

  it('wrong core range: MOE_ROUTE_ERR_PLUGIN_VERSION_MISMATCH with both versions, read from the manifest', async () => {
    const r = await route(config('old', [{ use: 'moe-route-policy-old-core' }]))
    expect(r.code).toBe(1)
    expect(r.err).toBe(
      'MOE_ROUTE_ERR_PLUGIN_VERSION_MISMATCH: /policies/0/use: plugin old-core (moe-route-policy-old-core@1.0.0) supports @moe-route/core ^0.0.1, but this is 0.1.0',
    )
  })

  it('invalid options: every bad field with its path and the plugin name, from route and validate', async () => {
    const file = config('bad-options', [{ use: 'moe-route-policy-entropy-drop', options: { capacityFactor: 0, rounding: 'up', extra: true } }])
    const r = await route(file)
    expect(r.code).toBe(1)
    expect(r.err).toMatch(/^MOE_ROUTE_ERR_CONFIG_INVALID: .*bad-options\.json has 3 problems:/)
    expect(r.err).toContain('/policies/0/options/capacityFactor: must be > 0 (plugin entropy-drop)')
    expect(r.err).toContain('/policies/0/options/rounding: must be one of "ceil", "floor", "round" (plugin entropy-drop)')
    expect(r.err).toContain('/policies/0/options/extra: is not a known field (plugin entropy-drop)')
    const v = await cli(['validate', '-c', file, '--json'], project.dir)
    expect(v.code).toBe(1)
    const issues = JSON.parse(v.out).issues as { code: string; path: string; plugin: string }[]
    expect(issues.map((i) => [i.code, i.path, i.plugin]).sort()).toEqual([
      ['MOE_ROUTE_ERR_PLUGIN_OPTIONS_INVALID', '/policies/0/options/capacityFactor', 'entropy-drop'],
      ['MOE_ROUTE_ERR_PLUGIN_OPTIONS_INVALID', '/policies/0/options/extra', 'entropy-drop'],
      ['MOE_ROUTE_ERR_PLUGIN_OPTIONS_INVALID', '/policies/0/options/rounding', 'entropy-drop'],
    ])
  })

  it('a package that exports no plugin: MOE_ROUTE_ERR_PLUGIN_INVALID', async () => {
    const r = await route(config('not-plugin', [{ use: 'moe-route-policy-not-a-plugin' }]))
    expect(r.code).toBe(1)
    expect(r.err).toMatch(/^MOE_ROUTE_ERR_PLUGIN_INVALID: \/policies\/0\/use: moe-route-policy-not-a-plugin exports no moe-route plugin/)
  })

  it('a package that throws while importing: MOE_ROUTE_ERR_PLUGIN_LOAD_FAILED naming it', async () => {
    const r = await route(config('fails-import', [{ use: 'moe-route-policy-fails-import' }]))
    expect(r.code).toBe(1)
    expect(r.err).toMatch(/^MOE_ROUTE_ERR_PLUGIN_LOAD_FAILED: \/policies\/0\/use: importing plugin package moe-route-policy-fails-import failed: .*a-dependency-that-is-not-installed/)
  })

  it('a plugin that throws in create: MOE_ROUTE_ERR_PLUGIN_FAILED naming plugin and hook', async () => {
    const r = await route(config('fails-create', [{ use: 'moe-route-policy-fails-create', options: { level: 3 } }]))
    expect(r.code).toBe(1)
    expect(r.err).toBe('MOE_ROUTE_ERR_PLUGIN_FAILED: plugin fails-create failed in create: cannot start: level 3')
  })

  it('a plugin that throws on a batch: MOE_ROUTE_ERR_PLUGIN_FAILED naming plugin and hook', async () => {
    const r = await route(config('fails-apply', [{ use: 'moe-route-policy-fails-apply' }]))
    expect(r.code).toBe(1)
    expect(r.err).toBe('MOE_ROUTE_ERR_PLUGIN_FAILED: plugin fails-apply failed in apply: exploded on batch 0')
  })

  it('a fallback named by package is loaded too, and runs when the policy throws', async () => {
    const r = await route(
      config('fallback', [{ use: 'moe-route-policy-fails-apply', fallback: { use: 'moe-route-policy-entropy-drop', options: { capacityFactor: 0.5 } } }]),
    )
    expect(r.err).toBe('')
    expect(r.code).toBe(0)
    const out = JSON.parse(r.out)
    expect(out.capacity).toBe(2)
    expect(out.tokens.flatMap((t: { dropped: unknown[] }) => t.dropped).length).toBeGreaterThan(0)
  })
})
