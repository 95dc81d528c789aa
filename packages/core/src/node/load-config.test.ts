import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it, vi } from 'vitest'
import { isResolvedFor } from '../config/trust.js'
import { resolveConfig } from '../config/validate.js'
import { createMoeContainer, createRegistry } from '../container.js'
import { ErrorCodes, MoeError, isMoeError } from '../errors.js'
import { definePolicy } from '../plugin/define.js'
import { collectConfigIssues, loadConfig } from './load-config.js'

const model = { experts: 4, topK: 2, hidden: 8, intermediate: 16 }
const keep = definePolicy<{ n: number }>({
  meta: { name: 'keep', package: 'test-keep', version: '0.0.0', core: '^0.1.0', schema: { type: 'object', properties: { n: { type: 'integer', minimum: 0 } }, additionalProperties: false }, defaultOptions: { n: 1 } },
  create: () => ({ name: 'keep', apply: (routing) => ({ routing, dropped: [] }) }),
})
const folder = () => mkdtempSync(join(tmpdir(), 'moe-load-config-'))

describe('loadConfig', () => {
  it('reads a JSONC file, fills what it leaves out from the defaults, applies overrides and resolves it once', async () => {
    const dir = folder()
    writeFileSync(join(dir, 'moe.jsonc'), '// comment\n{ "policies": [{ "use": "keep", "options": { "n": 2 } }], }\n')
    const loaded = await loadConfig({
      path: 'moe.jsonc',
      cwd: dir,
      defaults: { model, seed: 5 },
      plugins: [keep],
      overrides: (raw, file) => ({ ...raw, devices: file ? 2 : 1 }),
    })
    expect(loaded.source).toBe(join(dir, 'moe.jsonc'))
    expect(loaded.config).toMatchObject({ model: { experts: 4 }, seed: 5, devices: 2, policies: [{ use: 'keep', options: { n: 2 } }] })
    expect(Object.isFrozen(loaded.config)).toBe(true)
    // the container takes the loaded config as it is: options are checked only where plugins are
    // created (placement, router, policy, dispatcher), and no plugin is registered again
    const checks = vi.spyOn(loaded.registry, 'checkOptions')
    const registers = vi.spyOn(loaded.registry, 'register')
    createMoeContainer({ config: loaded.config, registry: loaded.registry })
    expect(checks).toHaveBeenCalledTimes(4)
    expect(registers).not.toHaveBeenCalled()
  })

  it('checks a config that was not resolved for the registry (a copy, or another registry)', () => {
    const registry = createRegistry([keep])
    const config = resolveConfig({ model, policies: [{ use: 'keep' }] }, registry)
    expect(isResolvedFor(config, registry)).toBe(true)
    expect(isResolvedFor(config, createRegistry([keep]))).toBe(false)
    const checks = vi.spyOn(registry, 'checkOptions')
    createMoeContainer({ config: { ...config, backend: undefined }, registry })
    expect(checks).toHaveBeenCalledTimes(8)
    expect(() => createMoeContainer({ config: { ...config, backend: undefined, policies: [{ use: 'keep', options: { n: -1 } }] }, registry })).toThrow(/n/)
  })

  it('without a file the defaults are the config; every check runs before any plugin code', async () => {
    const created = vi.fn()
    const counted = definePolicy<Record<string, never>>({
      meta: { name: 'counted', package: 'test-counted', version: '0.0.0', core: '^0.1.0', schema: { type: 'object' }, defaultOptions: {} },
      create: () => {
        created()
        return { name: 'counted', apply: (routing) => ({ routing, dropped: [] }) }
      },
    })
    const tooBig = () => {
      throw new MoeError(ErrorCodes.SIZE_LIMIT, 'too big', { path: '/model' })
    }
    await expect(loadConfig({ defaults: { model, policies: [{ use: 'counted' }] }, plugins: [counted], checks: [tooBig] })).rejects.toMatchObject({ code: ErrorCodes.SIZE_LIMIT })
    const loaded = await loadConfig({ defaults: { model, policies: [{ use: 'counted' }] }, plugins: [counted], prepare: (raw) => ({ ...raw, seed: 9 }) })
    expect(loaded.source).toBe('embedded default config')
    expect(loaded.config.seed).toBe(9)
    expect(created).not.toHaveBeenCalled()
  })

  it('refuses a file that is not a config object, and bad options with every issue', async () => {
    const dir = folder()
    writeFileSync(join(dir, 'list.json'), '[1]')
    writeFileSync(join(dir, 'bad.json'), JSON.stringify({ model, policies: [{ use: 'keep', options: { n: -1 } }, { use: 'nope' }] }))
    await expect(loadConfig({ path: 'list.json', cwd: dir })).rejects.toMatchObject({ code: ErrorCodes.CONFIG_INVALID, details: { path: '/' } })
    const e = await loadConfig({ path: 'bad.json', cwd: dir, plugins: [keep] }).catch((err: unknown) => err)
    expect(isMoeError(e) && e.code).toBe(ErrorCodes.CONFIG_INVALID)
    expect((e as MoeError).details.issues).toEqual([
      expect.objectContaining({ code: ErrorCodes.PLUGIN_OPTIONS_INVALID, path: '/policies/0/options/n' }),
      expect.objectContaining({ code: ErrorCodes.PLUGIN_UNKNOWN, path: '/policies/1/use' }),
    ])
  })
})

describe('collectConfigIssues', () => {
  it('reports schema, plugin, lazy-plugin and caller-check issues instead of throwing', async () => {
    const dir = folder()
    writeFileSync(join(dir, 'a.json'), JSON.stringify({ model, policies: [{ use: 'nope' }], backend: { use: 'gpu' } }))
    const issues = await collectConfigIssues({
      path: 'a.json',
      cwd: dir,
      lazyPlugins: async () => {
        throw new MoeError(ErrorCodes.BACKEND_UNAVAILABLE, 'no gpu here', { path: '/backend/use', plugin: 'gpu' })
      },
    })
    expect(issues.map((i) => [i.code, i.path])).toEqual([
      [ErrorCodes.BACKEND_UNAVAILABLE, '/backend/use'],
      [ErrorCodes.PLUGIN_UNKNOWN, '/policies/0/use'],
    ])
    writeFileSync(join(dir, 'b.json'), JSON.stringify({ model }))
    const tooBig = () => {
      throw new MoeError(ErrorCodes.SIZE_LIMIT, 'too big', { path: '/model' })
    }
    expect(await collectConfigIssues({ path: 'b.json', cwd: dir, checks: [tooBig] })).toEqual([{ code: ErrorCodes.SIZE_LIMIT, path: '/model', message: 'too big' }])
  })
})
