/**
 * Every first-party plugin package's package.json `moe-route` manifest — what validate,
 * plugins and config checks read instead of running the plugin — says exactly what its code
 * exports (kind, name, version, core range, description, device lowerings, options schema
 * and defaults), both ways. Checked here from the sources; `node scripts/plugin-manifests.mjs
 * --write` rewrites a stale manifest from the build.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { checkAgainstManifest, ownPlugins, pluginsOf, readManifest } from '@moe-route/core/node'
import { describe, expect, it } from 'vitest'
import { manifestPackages } from '../../scripts/workspace.mjs'
import { ROOT } from './helpers.js'

const packages: string[] = manifestPackages(ROOT).map(({ dir }) => dir)

describe('first-party plugin manifests', () => {
  it('cover every workspace package whose keywords call it a moe-route plugin', () => {
    const dirs = ['packages/policies', 'examples'].flatMap((d) => readdirSync(join(ROOT, d)).map((x) => `${d}/${x}`))
    const plugins = dirs.filter((d) => existsSync(join(ROOT, d, 'package.json')) && (JSON.parse(readFileSync(join(ROOT, d, 'package.json'), 'utf8')).keywords ?? []).includes('moe-plugin'))
    expect(plugins).toEqual(expect.arrayContaining(['packages/policies/capacity', 'packages/policies/c2r', 'examples/custom-policy']))
    for (const d of plugins) expect(packages).toContain(d)
  })

  it.each(packages)('%s: the manifest equals what the module exports', async (dir) => {
    const pkg = JSON.parse(readFileSync(join(ROOT, dir, 'package.json'), 'utf8'))
    const manifest = readManifest(pkg, `${dir}/package.json`)
    const mod = (await import(join(ROOT, dir, 'src/index.ts'))) as Record<string, unknown>
    const source = { name: pkg.name, version: pkg.version, manifest }
    const plugins = ownPlugins(pluginsOf(mod), source)
    expect(plugins.length).toBe(manifest.plugins.length)
    expect(() => checkAgainstManifest(plugins, source)).not.toThrow()
  })
})
