/** `moe-route plugins`: built-in, loaded and installed plugins, with versions and compatibility. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { join } from 'node:path'
import { ROOT, cli, createProject, policyPackage, policySource, type Project } from './helpers.js'

let project: Project
beforeAll(() => {
  project = createProject()
  project.installBuilt('moe-route-policy-entropy-drop', join(ROOT, 'examples/custom-policy'))
  project.addPackage('moe-route-policy-old-core', policySource('old-core', { core: '^0.0.1' }), policyPackage('old-core', { core: '^0.0.1' }))
  project.addPackage('@acme/moe-route-policy-keep', policySource('keep', { package: '@acme/moe-route-policy-keep' }), policyPackage('keep'))
  project.addPackage('left-pad-ish', 'export default 1\n', { keywords: [] })
  project.write('moe-route.config.json', { model: { experts: 8, topK: 2, hidden: 8, intermediate: 8 }, policies: [{ use: 'moe-route-policy-entropy-drop' }] })
})
afterAll(() => project.dispose())

describe('moe-route plugins', () => {
  it('--json: built-ins with versions and core ranges, installed packages with their compatibility', async () => {
    const r = await cli(['plugins', '--json'], project.dir)
    expect(r.err).toBe('')
    expect(r.code).toBe(0)
    const l = JSON.parse(r.out)
    expect(l.core).toBe('0.1.0')
    const router = l.plugins.find((p: { name: string }) => p.name === 'softmax-top-k')
    expect(router).toMatchObject({ kind: 'router', package: '@moe-route/core', version: '0.1.0', core: '^0.1.0', status: 'built-in', compatible: true })
    expect(l.plugins.filter((p: { kind: string }) => p.kind === 'policy').length).toBeGreaterThan(0)
    expect(l.plugins.every((p: { version: string; core: string }) => /^\d+\.\d+\.\d+/.test(p.version) && p.core.length > 0)).toBe(true)
    const installed = Object.fromEntries(l.installed.map((p: { name: string }) => [p.name, p]))
    expect(Object.keys(installed).sort()).toEqual(['@acme/moe-route-policy-keep', 'moe-route-policy-entropy-drop', 'moe-route-policy-old-core'])
    expect(installed['moe-route-policy-entropy-drop']).toMatchObject({ version: '1.0.0', coreRange: '^0.1.0', compatible: true, status: 'installed' })
    expect(installed['moe-route-policy-old-core']).toMatchObject({ coreRange: '^0.0.1', compatible: false })
    // Either the WebGPU backend loaded, or it is listed as unavailable with why.
    const webgpu = l.plugins.some((p: { kind: string; name: string }) => p.kind === 'backend' && p.name === 'webgpu') || l.unavailable.some((u: { name: string }) => u.name === 'webgpu')
    expect(webgpu).toBe(true)
  })

  it('-c: marks the plugins the config loads, and no longer lists them as merely installed', async () => {
    const r = await cli(['plugins', '-c', 'moe-route.config.json', '--json'], project.dir)
    expect(r.code).toBe(0)
    const l = JSON.parse(r.out)
    expect(l.plugins.find((p: { name: string }) => p.name === 'entropy-drop')).toMatchObject({
      kind: 'policy',
      package: 'moe-route-policy-entropy-drop',
      version: '1.0.0',
      core: '^0.1.0',
      source: 'moe-route-policy-entropy-drop',
      status: 'loaded',
      compatible: true,
    })
    expect(l.installed.map((p: { name: string }) => p.name)).not.toContain('moe-route-policy-entropy-drop')
  })

  it('text: a table of plugins and a section of installed packages saying which are incompatible', async () => {
    const r = await cli(['plugins', '-c', 'moe-route.config.json'], project.dir)
    expect(r.code).toBe(0)
    const lines = r.out.split('\n')
    expect(lines[0]).toBe('@moe-route/core 0.1.0')
    expect(lines[2]).toMatch(/^kind\s+name\s+package\s+version\s+core range\s+compatible\s+status$/)
    expect(lines.find((l) => l.startsWith('policy') && l.includes(' entropy-drop '))).toMatch(/moe-route-policy-entropy-drop\s+1\.0\.0\s+\^0\.1\.0\s+yes\s+loaded from moe-route-policy-entropy-drop$/)
    expect(r.out).toContain('installed in node_modules, not loaded')
    expect(lines.find((l) => l.includes('moe-route-policy-old-core'))).toMatch(/1\.0\.0\s+\^0\.0\.1\s+no: needs \^0\.0\.1, this is 0\.1\.0\s+policy old-core$/)
  })

  it('a config naming a missing package fails with the package name', async () => {
    project.write('missing.json', { model: { experts: 8, topK: 2, hidden: 8, intermediate: 8 }, plugins: ['moe-route-policy-missing'] })
    const r = await cli(['plugins', '-c', 'missing.json'], project.dir)
    expect(r.code).toBe(1)
    expect(r.err).toMatch(/^MOE_ROUTE_ERR_PLUGIN_UNKNOWN: \/plugins\/0: plugin package moe-route-policy-missing is not installed/)
  })
})
