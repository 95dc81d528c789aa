/**
 * The plugin trust model through the real CLI (issue 18): a plugin's meta is read from its
 * package.json manifest, so validate, plugins and every config check run no plugin code; code
 * runs only for a command that uses the plugin, bounded in time (or isolated in a worker
 * thread); references that leave node_modules or their package are refused; local files need
 * the opt-in and must lie in the project. Payloads write a marker file when they run.
 */
import { existsSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest'
import { ROOT, cli, createProject, policyManifest, policyPackage, policySource, type Project } from './helpers.js'

let project: Project
let outside: string
const model = { experts: 4, topK: 2, hidden: 8, intermediate: 8 }
const input = { experts: 4, topK: 2, scores: [[0.5, 0.3, 0.1, 0.1], [0.4, 0.4, 0.1, 0.1], [0.7, 0.2, 0.05, 0.05], [0.3, 0.3, 0.2, 0.2]] }
const marker = (name: string) => join(project.dir, `RAN-${name}`)
/** Source that writes a marker file when it runs, then does `rest`. */
const payload = (name: string, rest = 'export default {}\n') => `import { writeFileSync } from 'node:fs'\nwriteFileSync(${JSON.stringify(marker(name))}, 'ran')\n${rest}`
const config = (name: string, body: object) => project.write(`${name}.json`, { model, ...body })
const route = (configFile: string, ...flags: string[]) => cli([...flags, 'route', '-i', 'input.json', '-c', configFile, '--json'], project.dir)
// short limits keep the timeout cases quick; a loaded CI machine still imports a healthy plugin in time
const fast = { security: { pluginTimeoutMs: 1500 } }

beforeAll(() => {
  project = createProject()
  outside = mkdtempSync(join(tmpdir(), 'moe-route-outside-'))
  project.write('input.json', input)
  project.write('package.json', { name: 'my-project', version: '2.0.0', private: true, 'moe-route': policyManifest('local-keep') })
  project.write('plugins/local-keep.js', payload('local', policySource('local-keep', { package: 'my-project' }).replace("version: '1.0.0'", "version: '2.0.0'")))
  project.write('evil.js', payload('evil'))
  writeFileSync(join(outside, 'evil.js'), payload('outside'))
  project.installBuilt('moe-route-policy-entropy-drop', join(ROOT, 'examples/custom-policy'))
  project.addPackage('moe-route-policy-marker', payload('marker', policySource('marker')), policyPackage('marker'))
  project.addPackage('moe-route-policy-nomanifest', payload('nomanifest', policySource('nomanifest')), {})
  project.addPackage('moe-route-policy-main-escape', '', { ...policyPackage('main-escape'), exports: undefined, main: '../../evil.js' })
  project.addPackage('moe-route-policy-exports-escape', '', { ...policyPackage('exports-escape'), exports: { '.': './../../evil.js' } })
  project.addPackage('moe-route-policy-bare-target', '', { ...policyPackage('bare-target'), exports: { '.': '../../evil.js' } })
  project.addPackage('moe-route-policy-link-escape', '', { ...policyPackage('link-escape'), exports: { '.': './entry.js' } })
  symlinkSync(join(project.dir, 'evil.js'), join(project.dir, 'node_modules/moe-route-policy-link-escape/entry.js'))
  project.addPackage('moe-route-policy-mismatch', payload('mismatch', policySource('mismatch')), { ...policyPackage('mismatch'), 'moe-route': { ...policyManifest('mismatch'), plugins: [{ ...(policyManifest('mismatch').plugins as object[])[0], schema: { type: 'object', properties: { level: { type: 'integer', maximum: 5 } } } }] } })
  project.addPackage('moe-route-policy-hang', `await new Promise(() => {})\n${policySource('hang')}`, policyPackage('hang'))
  project.addPackage('moe-route-policy-hang-timer', `setInterval(() => {}, 1000).unref()\nawait new Promise((resolve) => setTimeout(resolve, 600_000).unref())\n${policySource('hang-timer')}`, policyPackage('hang-timer'))
  project.addPackage('moe-route-policy-spin', policySource('spin').replace('return { routing, dropped: [] }', 'for (;;) {}'), policyPackage('spin'))
  project.addPackage('moe-route-policy-spin-import', `for (;;) {}\n${policySource('spin-import')}`, policyPackage('spin-import'))
  project.addPackage('moe-route-policy-intrinsics', `Math.exp = () => 1\nObject.prototype.polluted = 'yes'\n${policySource('intrinsics')}`, policyPackage('intrinsics'))
  project.addPackage(
    'moe-route-policy-coin',
    policySource('coin').replace(
      'return { routing, dropped: [] }',
      `const expertIds = routing.expertIds.slice(), weights = routing.weights.slice(), dropped = []
        for (let i = 0; i < expertIds.length; i++) if (expertIds[i] >= 0 && ctx.random() < 0.5) {
          dropped.push({ token: Math.floor(i / routing.slots), expert: expertIds[i], weight: weights[i], reason: 'coin', policy: 'coin' }); expertIds[i] = -1; weights[i] = 0 }
        return { routing: { ...routing, expertIds, weights }, dropped }`,
    ),
    policyPackage('coin'),
  )
})
afterAll(() => {
  project.dispose()
  rmSync(outside, { recursive: true, force: true })
})
beforeEach(() => {
  for (const n of ['marker', 'nomanifest', 'evil', 'outside', 'local', 'mismatch']) rmSync(marker(n), { force: true })
})

describe('config checks read manifests and run no plugin code', () => {
  it('validate: a valid config, and bad options reported from the manifest schema, nothing run', async () => {
    const ok = await cli(['validate', '-c', config('v-ok', { policies: [{ use: 'moe-route-policy-marker', options: { level: 2 } }] })], project.dir)
    expect(ok.err).toBe('')
    expect(ok.code).toBe(0)
    const bad = await cli(['validate', '-c', config('v-bad', { policies: [{ use: 'moe-route-policy-marker', options: { level: -1, extra: 1 } }] }), '--json'], project.dir)
    expect(bad.code).toBe(1)
    expect(JSON.parse(bad.out).issues.map((i: { code: string; path: string }) => [i.code, i.path]).sort()).toEqual([
      ['MOE_ROUTE_ERR_PLUGIN_OPTIONS_INVALID', '/policies/0/options/extra'],
      ['MOE_ROUTE_ERR_PLUGIN_OPTIONS_INVALID', '/policies/0/options/level'],
    ])
    expect(existsSync(marker('marker'))).toBe(false)
  })

  it('plugins -c lists the config plugins from their manifests without running them', async () => {
    const r = await cli(['plugins', '-c', config('p', { policies: [{ use: 'moe-route-policy-marker' }] }), '--json'], project.dir)
    expect(r.code).toBe(0)
    expect(JSON.parse(r.out).plugins.find((p: { name: string }) => p.name === 'marker')).toMatchObject({ kind: 'policy', package: 'moe-route-policy-marker', version: '1.0.0', status: 'loaded' })
    expect(existsSync(marker('marker'))).toBe(false)
  })

  it('route checks the whole config first: bad options run nothing; a plugin listed but unused runs nothing; a used one runs', async () => {
    const bad = await route(config('r-bad', { policies: [{ use: 'moe-route-policy-marker', options: { level: 'x' } }] }))
    expect(bad.code).toBe(1)
    expect(bad.err).toMatch(/^MOE_ROUTE_ERR_CONFIG_INVALID: .*\n\s+\/policies\/0\/options\/level: must be integer \(plugin marker\)/)
    expect(existsSync(marker('marker'))).toBe(false)
    const unused = await route(config('r-unused', { plugins: ['moe-route-policy-marker'], policies: [] }))
    expect(unused.err).toBe('')
    expect(existsSync(marker('marker'))).toBe(false)
    const used = await route(config('r-used', { policies: [{ use: 'moe-route-policy-marker' }] }))
    expect(used.err).toBe('')
    expect(used.code).toBe(0)
    expect(existsSync(marker('marker'))).toBe(true)
  })

  it('a package without a manifest is refused, naming the config field; validate reports it too', async () => {
    const file = config('nomanifest', { policies: [{ use: 'moe-route-policy-nomanifest' }] })
    const r = await route(file)
    expect(r.code).toBe(1)
    expect(r.err).toMatch(/^MOE_ROUTE_ERR_PLUGIN_MANIFEST_MISSING: \/policies\/0\/use: moe-route-policy-nomanifest declares no moe-route plugins/)
    const v = await cli(['validate', '-c', file, '--json'], project.dir)
    expect(JSON.parse(v.out).issues).toEqual([expect.objectContaining({ code: 'MOE_ROUTE_ERR_PLUGIN_MANIFEST_MISSING', path: '/policies/0/use' })])
    expect(existsSync(marker('nomanifest'))).toBe(false)
  })
})

describe('references that leave node_modules or their package are refused', () => {
  const refused: [string, object, string][] = [
    ['a name with ../ (policies[].use)', { policies: [{ use: 'moe-route-policy-x/../../evil.js' }] }, '/policies/0/use'],
    ['a scoped name with ../', { policies: [{ use: '@x/../../evil.js' }] }, '/policies/0/use'],
    ['a subpath of a package', { plugins: ['moe-route-policy-marker/index.js'] }, '/plugins/0'],
    ['a file URL', { plugins: ['file:///etc/passwd'] }, '/plugins/0'],
    ['a fallback that is a path', { policies: [{ use: 'entropy-drop', fallback: { use: '../evil.js' } }], plugins: ['moe-route-policy-entropy-drop'] }, '/policies/0/fallback/use'],
    ['a package whose main leaves its folder', { policies: [{ use: 'moe-route-policy-main-escape' }] }, '/policies/0/use'],
    ['a package whose exports target leaves its folder', { policies: [{ use: 'moe-route-policy-exports-escape' }] }, '/policies/0/use'],
    ['a package whose exports target is not ./', { policies: [{ use: 'moe-route-policy-bare-target' }] }, '/policies/0/use'],
    ['a package whose entry is a symlink out of it', { policies: [{ use: 'moe-route-policy-link-escape' }] }, '/policies/0/use'],
  ]
  it.each(refused)('%s: MOE_ROUTE_ERR_PLUGIN_PATH_REFUSED at the field, nothing run', async (name, body, path) => {
    const file = config(`refused-${name.replace(/\W+/g, '-')}`, body)
    for (const r of [await route(file), await route(file, '--allow-local-plugins')]) {
      expect(r.code).toBe(1)
      expect(r.err.split('\n')[0]).toMatch(new RegExp(`^MOE_ROUTE_ERR_PLUGIN_PATH_REFUSED: ${path.replace(/\//g, '\\/')}: `))
    }
    const v = await cli(['validate', '-c', file, '--json'], project.dir)
    expect(v.code).toBe(1)
    expect(JSON.parse(v.out).issues).toContainEqual(expect.objectContaining({ code: 'MOE_ROUTE_ERR_PLUGIN_PATH_REFUSED', path }))
    expect(existsSync(marker('evil'))).toBe(false)
  })

  it('a local file plugin needs --allow-local-plugins, and then runs', async () => {
    const file = config('local', { policies: [{ use: './plugins/local-keep.js' }] })
    const v = await cli(['validate', '-c', file], project.dir)
    expect(v.err).toBe('')
    expect(existsSync(marker('local'))).toBe(false)
    const refused = await route(file)
    expect(refused.code).toBe(1)
    expect(refused.err).toMatch(/^MOE_ROUTE_ERR_PLUGIN_PATH_REFUSED: \/policies\/0\/use: .*local file.*--allow-local-plugins/)
    expect(existsSync(marker('local'))).toBe(false)
    const ok = await route(file, '--allow-local-plugins')
    expect(ok.err).toBe('')
    expect(ok.code).toBe(0)
    expect(existsSync(marker('local'))).toBe(true)
  })

  it('a file that is no plugin of the project is an unknown plugin at its field, and never runs', async () => {
    for (const flags of [[], ['--allow-local-plugins']]) {
      const r = await route(config('router-file', { router: { use: './evil.js' } }), ...flags)
      expect(r.code).toBe(1)
      expect(r.err).toMatch(/^MOE_ROUTE_ERR_CONFIG_INVALID: .*\n\s+\/router\/use: unknown router plugin '.\/evil.js'/)
    }
    expect(existsSync(marker('evil'))).toBe(false)
  })

  it('a local file outside the project is refused even with the opt-in', async () => {
    const r = await route(config('outside', { policies: [{ use: join(outside, 'evil.js') }] }), '--allow-local-plugins')
    expect(r.code).toBe(1)
    expect(r.err).toMatch(/^MOE_ROUTE_ERR_PLUGIN_PATH_REFUSED: \/policies\/0\/use: .*outside the project/)
    expect(existsSync(marker('outside'))).toBe(false)
  })

  it('a module that differs from its manifest is refused when it loads (MOE_ROUTE_ERR_PLUGIN_MANIFEST_MISMATCH naming the field)', async () => {
    const r = await route(config('mismatch', { policies: [{ use: 'moe-route-policy-mismatch' }] }))
    expect(r.code).toBe(1)
    expect(r.err).toMatch(/^MOE_ROUTE_ERR_PLUGIN_MANIFEST_MISMATCH: \/policies\/0\/use: moe-route-policy-mismatch: policy 'mismatch': meta\.schema is .* in the module but .* in the manifest/)
  })
})

describe('plugin code runs under a time limit', () => {
  const timeouts: [string, string, string][] = [
    ['an import whose top-level await never settles', 'moe-route-policy-hang', 'import'],
    ['an import that waits on a live timer', 'moe-route-policy-hang-timer', 'import'],
    ['an apply that never returns', 'moe-route-policy-spin', 'apply'],
  ]
  it.each(timeouts)('%s: MOE_ROUTE_ERR_PLUGIN_TIMEOUT naming the plugin and hook, exit 1', async (_n, pkg, hook) => {
    const started = performance.now()
    const r = await route(config(`t-${pkg}`, { policies: [{ use: pkg }], ...fast }))
    expect(r.code).toBe(1)
    expect(r.err).toMatch(new RegExp(`^MOE_ROUTE_ERR_PLUGIN_TIMEOUT: .*plugin (${pkg}|${pkg.replace('moe-route-policy-', '')}) did not finish ${hook} within 1500 ms`))
    expect(performance.now() - started).toBeLessThan(20_000)
  })
})

describe('--isolate-plugins: package plugins run in a worker thread', () => {
  it('gives the same routing as in this thread, random draws included', async () => {
    for (const use of ['moe-route-policy-entropy-drop', 'moe-route-policy-coin']) {
      const file = config(`iso-${use}`, { policies: [{ use, ...(use.endsWith('entropy-drop') ? { options: { capacityFactor: 0.5 } } : {}) }], seed: 7 })
      const inThread = await route(file)
      const isolated = await route(file, '--isolate-plugins')
      expect(inThread.err).toBe('')
      expect(isolated.err).toBe('')
      expect(JSON.parse(isolated.out)).toEqual(JSON.parse(inThread.out))
    }
  }, 120_000)

  it("keeps a plugin's changes to Math and Object.prototype in its worker", async () => {
    const baseline = await route(config('iso-base', { policies: [] }))
    const r = await route(config('iso-intrinsics', { policies: [{ use: 'moe-route-policy-intrinsics' }] }), '--isolate-plugins')
    expect(r.err).toBe('')
    expect(JSON.parse(r.out)).toEqual(JSON.parse(baseline.out))
    expect(Math.exp(1)).toBeCloseTo(Math.E)
    expect(({} as Record<string, unknown>).polluted).toBeUndefined()
  })

  it('stops a spinning import or apply by terminating the worker (config security.isolatePlugins works like the flag)', async () => {
    for (const [pkg, hook] of [['moe-route-policy-spin-import', 'import'], ['moe-route-policy-spin', 'apply'], ['moe-route-policy-hang', 'import']]) {
      // a worker starts and imports core before the plugin: a longer limit than in this thread
      const r = await route(config(`iso-t-${pkg}`, { policies: [{ use: pkg }], security: { pluginTimeoutMs: 5000, isolatePlugins: true } }))
      expect(r.code).toBe(1)
      expect(r.err).toMatch(new RegExp(`^MOE_ROUTE_ERR_PLUGIN_TIMEOUT: .*did not finish ${hook} within 5000 ms`))
    }
    // three 5 s limits plus a worker start each: ~20 s on a loaded 2-core machine
  }, 120_000)
})

