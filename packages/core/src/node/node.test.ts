import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { definePolicy } from '../plugin/define.js'
import { isMoeError, type MoeError } from '../errors.js'
import { boundedPlugin, callWithin, withTimeout } from './bounded.js'
import { checkAgainstManifest, manifestOf, readManifest } from './manifest.js'
import { isPackageName, resolvePluginPackage } from './resolve.js'

const caught = (fn: () => unknown): MoeError => {
  try {
    fn()
  } catch (e) {
    if (isMoeError(e)) return e
    throw e
  }
  throw new Error('expected a MoeError')
}
const rejected = async (p: Promise<unknown>): Promise<MoeError> => {
  try {
    await p
  } catch (e) {
    if (isMoeError(e)) return e
    throw e
  }
  throw new Error('expected a MoeError')
}

const policy = (over: Record<string, unknown> = {}) =>
  definePolicy({
    meta: { name: 'keep', package: 'moe-route-policy-keep', version: '1.2.3', core: '^0.1.0', schema: { type: 'object', properties: { n: { type: 'integer' } } }, defaultOptions: { n: 1 }, ...over },
    create: () => ({ name: 'keep', apply: (routing) => ({ routing, dropped: [] }) }),
  })
const pkgOf = (manifest: unknown) => ({ name: 'moe-route-policy-keep', version: '1.2.3', 'moe-route': manifest })

describe('plugin manifests', () => {
  it('round-trips: the manifest written from a module is read back and matches it', () => {
    const p = policy({ description: 'keeps all', device: ['wgsl'] })
    const m = readManifest(JSON.parse(JSON.stringify(pkgOf(manifestOf([p])))), 'package.json')
    expect(m.plugins[0]).toMatchObject({ kind: 'policy', name: 'keep', description: 'keeps all', device: ['wgsl'], defaultOptions: { n: 1 } })
    expect(() => checkAgainstManifest([p], { name: 'moe-route-policy-keep', version: '1.2.3', manifest: m })).not.toThrow()
  })

  const bad: [string, unknown, string][] = [
    ['an unknown kind', { core: '^0.1.0', plugins: [{ kind: 'virus', name: 'x', schema: {}, defaultOptions: {} }] }, '/moe-route/plugins/0/kind'],
    ['a name with a path in it', { core: '^0.1.0', plugins: [{ kind: 'policy', name: '../x', schema: {}, defaultOptions: {} }] }, '/moe-route/plugins/0/name'],
    ['an unknown field', { core: '^0.1.0', plugins: [{ kind: 'policy', name: 'x', schema: {}, defaultOptions: {}, main: './evil.js' }] }, '/moe-route/plugins/0'],
    ['a plugin declared twice', { core: '^0.1.0', plugins: [1, 2].map(() => ({ kind: 'policy', name: 'x', schema: {}, defaultOptions: {} })) }, '/moe-route/plugins/1'],
    ['an unbounded pattern (slow on long strings)', { core: '^0.1.0', plugins: [{ kind: 'policy', name: 'x', schema: { type: 'object', properties: { s: { type: 'string', pattern: '^(a+)+$' } } }, defaultOptions: {} }] }, '/moe-route/plugins/0/schema'],
    ['an $id (would claim an id in the shared validator)', { core: '^0.1.0', plugins: [{ kind: 'policy', name: 'x', schema: { $id: 'https://moe-route.dev/schema/config.schema.json' }, defaultOptions: {} }] }, '/moe-route/plugins/0/schema/$id'],
    ['a remote $ref', { core: '^0.1.0', plugins: [{ kind: 'policy', name: 'x', schema: { $ref: 'https://example.com/s.json' }, defaultOptions: {} }] }, '/moe-route/plugins/0/schema/$ref'],
    ['a schema nested 40 levels deep', { core: '^0.1.0', plugins: [{ kind: 'policy', name: 'x', schema: Array.from({ length: 40 }).reduce((s) => ({ not: s }), {}), defaultOptions: {} }] }, '/moe-route/plugins/0/schema'],
    ['no plugins', { core: '^0.1.0', plugins: [] }, '/moe-route/plugins'],
  ]
  it.each(bad)('refuses %s: MOE_ROUTE_ERR_PLUGIN_MANIFEST_INVALID naming the field', (_n, manifest, field) => {
    const e = caught(() => readManifest(pkgOf(manifest), 'package.json'))
    expect(e.code).toBe('MOE_ROUTE_ERR_PLUGIN_MANIFEST_INVALID')
    expect(String(e.details.field)).toMatch(new RegExp(`^${field.replace(/[$/]/g, '\\$&')}`))
  })

  it('a package without the field is MOE_ROUTE_ERR_PLUGIN_MANIFEST_MISSING', () => {
    expect(caught(() => readManifest({ name: 'x' }, 'package.json')).code).toBe('MOE_ROUTE_ERR_PLUGIN_MANIFEST_MISSING')
  })

  it('a local $ref is fine', () => {
    expect(() => readManifest(pkgOf({ core: '^0.1.0', plugins: [{ kind: 'policy', name: 'x', schema: { definitions: { n: { type: 'integer' } }, properties: { a: { $ref: '#/definitions/n' } } }, defaultOptions: {} }] }), 'p')).not.toThrow()
  })

  const mismatches: [string, Parameters<typeof policy>[0], string][] = [
    ['version', { version: '9.9.9' }, 'version'],
    ['core range', { core: '^0.2.0' }, 'core'],
    ['schema', { schema: { type: 'object' } }, 'schema'],
    ['defaults', { defaultOptions: { n: 2 } }, 'defaultOptions'],
    ['device lowerings', { device: ['wgsl'] }, 'device'],
    ['description', { description: 'other' }, 'description'],
  ]
  it.each(mismatches)('a module whose %s differs from its manifest is MOE_ROUTE_ERR_PLUGIN_MANIFEST_MISMATCH', (_n, over, field) => {
    const manifest = manifestOf([policy()])
    const e = caught(() => checkAgainstManifest([policy(over)], { name: 'moe-route-policy-keep', version: '1.2.3', manifest }))
    expect(e).toMatchObject({ code: 'MOE_ROUTE_ERR_PLUGIN_MANIFEST_MISMATCH', details: { field } })
  })

  it('an undeclared export and a declared plugin the module lacks are mismatches', () => {
    const manifest = manifestOf([policy()])
    const other = definePolicy({ meta: { ...policy().meta, name: 'other' }, create: policy().create })
    expect(caught(() => checkAgainstManifest([policy(), other], { name: 'moe-route-policy-keep', version: '1.2.3', manifest })).message).toMatch(/exports policy 'other', which the manifest does not declare/)
    expect(caught(() => checkAgainstManifest([], { name: 'moe-route-policy-keep', version: '1.2.3', manifest })).message).toMatch(/declares policy 'keep', which the module does not export/)
    expect(() => checkAgainstManifest([], { name: 'moe-route-policy-keep', version: '1.2.3', manifest, partial: true })).not.toThrow()
  })
})

describe('plugin references', () => {
  it.each([
    ['moe-route-policy-x', true],
    ['@acme/moe-route-policy-x', true],
    ['moe-route-policy-x/../../evil.js', false],
    ['@x/../../evil.js', false],
    ['moe-route-policy-x/sub', false],
    ['../evil', false],
    ['file:///etc/passwd', false],
    ['Moe-Route-Policy', false],
    ['node_modules', false],
    ['x'.repeat(215), false],
  ])('isPackageName(%j) is %s', (spec, ok) => expect(isPackageName(spec)).toBe(ok))

  it('resolves a package only inside node_modules and only to a module inside it', () => {
    const root = mkdtempSync(join(tmpdir(), 'moe-resolve-'))
    const manifest = manifestOf([policy()])
    const add = (name: string, pkg: object, files: Record<string, string> = { 'index.js': '' }) => {
      mkdirSync(join(root, 'node_modules', name), { recursive: true })
      writeFileSync(join(root, 'node_modules', name, 'package.json'), JSON.stringify({ name, version: '1.2.3', 'moe-route': manifest, ...pkg }))
      for (const [f, text] of Object.entries(files)) writeFileSync(join(root, 'node_modules', name, f), text)
    }
    add('moe-route-policy-ok', { exports: { '.': { require: './index.cjs', import: './index.js' } } })
    add('moe-route-policy-main', { main: '../../x.js' })
    add('moe-route-policy-cond', { exports: { node: { import: './../outside.js' } } })
    add('moe-route-policy-link', { main: './link.js' }, {})
    writeFileSync(join(root, 'x.js'), '')
    symlinkSync(join(root, 'x.js'), join(root, 'node_modules/moe-route-policy-link/link.js'))
    const from = join(root, 'sub')
    mkdirSync(from)
    expect(resolvePluginPackage('moe-route-policy-ok', { from }).entry).toBe(join(root, 'node_modules/moe-route-policy-ok/index.js'))
    for (const spec of ['moe-route-policy-main', 'moe-route-policy-cond', 'moe-route-policy-link', '../x.js']) {
      expect(caught(() => resolvePluginPackage(spec, { from })).code).toBe('MOE_ROUTE_ERR_PLUGIN_PATH_REFUSED')
    }
    expect(caught(() => resolvePluginPackage('moe-route-policy-none', { from })).code).toBe('MOE_ROUTE_ERR_PLUGIN_UNKNOWN')
    expect(caught(() => resolvePluginPackage('../x.js', { from, allowLocal: true })).message).toMatch(/outside the project/)
  })
})

describe('time limits', () => {
  it('callWithin interrupts an endless loop and names the plugin and hook; errors and values pass through', () => {
    const started = performance.now()
    const e = caught(() =>
      callWithin(() => {
        for (;;);
      }, 100, 'spinner', 'apply'),
    )
    expect(e).toMatchObject({ code: 'MOE_ROUTE_ERR_PLUGIN_TIMEOUT', details: { plugin: 'spinner', hook: 'apply' } })
    expect(performance.now() - started).toBeLessThan(5000)
    // calls that finish get a limit no descheduling on a loaded machine comes near
    expect(callWithin(() => 42, 10_000, 'p', 'h')).toBe(42)
    expect(() => callWithin(() => {
      throw new RangeError('boom')
    }, 10_000, 'p', 'h')).toThrow(RangeError)
  })

  it('a promise that never settles is a timeout; the timer does not outlive a settled one', async () => {
    const e = await rejected(callWithin(() => new Promise(() => {}), 50, 'p', 'prepare') as Promise<unknown>)
    expect(e).toMatchObject({ code: 'MOE_ROUTE_ERR_PLUGIN_TIMEOUT', details: { hook: 'prepare' } })
    await expect(withTimeout(Promise.resolve(7), 10_000, () => new Error('late'))).resolves.toBe(7)
  })

  it('boundedPlugin bounds create and every method of class and object instances', () => {
    class Spinner {
      readonly name = 'spin'
      apply(): never {
        for (;;);
      }
      total = 0
      add(n: number) {
        return (this.total += n)
      }
    }
    // one limit for every method: long enough that the quick calls never meet it on a loaded machine
    const p = boundedPlugin(definePolicy({ meta: policy().meta, create: () => new Spinner() as never }), 1000)
    const instance = p.create({ n: 1 }, { model: { experts: 2, topK: 1, hidden: 1, intermediate: 1, normalizeTopK: true }, devices: 1, seed: 1 }) as unknown as Spinner
    expect(instance.name).toBe('spin')
    expect(instance.add(2) + instance.add(3)).toBe(7)
    expect(caught(() => instance.apply())).toMatchObject({ code: 'MOE_ROUTE_ERR_PLUGIN_TIMEOUT', details: { plugin: 'keep', hook: 'apply' } })
  })
})
