/**
 * First-party plugin packages are found from the workspace, never from hand-kept lists: the
 * CLI's generated list is up to date, and a package made by scripts/new-package.mjs --plugin
 * reaches the CLI (generated module and dependencies), the testkit's conformance run, the
 * manifest check and the packaging checks with no other edit.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { firstPartyPluginPackages, manifestPackages, publishedPackages } from '../../scripts/workspace.mjs'
import { ROOT } from './helpers.js'

const script = (name: string) => join(ROOT, 'scripts', name)

describe('first-party plugin packages', () => {
  it("the CLI's generated list and dependencies match the workspace", () => {
    expect(() => execFileSync(process.execPath, [script('first-party.mjs')], { cwd: ROOT, stdio: 'pipe' })).not.toThrow()
    const generated = readFileSync(join(ROOT, 'packages/cli/src/first-party.generated.ts'), 'utf8')
    for (const { pkg } of firstPartyPluginPackages()) expect(generated).toContain(`from '${pkg.name}'`)
    expect(firstPartyPluginPackages().map(({ pkg }) => pkg.name)).toContain('@moe-route/policy-capacity')
  })

  describe('a package made by new-package.mjs --plugin', () => {
    // inside the checkout (under node_modules, which git ignores) so the starter module resolves @moe-route/core
    mkdirSync(join(ROOT, 'node_modules/.cache'), { recursive: true })
    const root = mkdtempSync(join(ROOT, 'node_modules/.cache/new-package-'))
    afterAll(() => rmSync(root, { recursive: true, force: true }))
    // a workspace like ours: the root package.json and the CLI's package.json
    writeFileSync(join(root, 'package.json'), readFileSync(join(ROOT, 'package.json')))
    mkdirSync(join(root, 'packages/cli/src'), { recursive: true })
    writeFileSync(join(root, 'packages/cli/package.json'), readFileSync(join(ROOT, 'packages/cli/package.json')))
    execFileSync(process.execPath, [script('new-package.mjs'), 'packages/policies/demo', '@moe-route/policy-demo', 'a demo policy', '--plugin'], { cwd: root, stdio: 'pipe' })
    const names = (list: { pkg: { name: string } }[]) => list.map(({ pkg }) => pkg.name)

    it('is a first-party plugin package whose manifest declares its starter policy, with core as a peer and the package checks', async () => {
      const pkg = JSON.parse(readFileSync(join(root, 'packages/policies/demo/package.json'), 'utf8'))
      // the manifest is what the starter module exports (the check the manifest test makes)
      const { checkAgainstManifest, ownPlugins, pluginsOf, readManifest } = await import('@moe-route/core/node')
      const manifest = readManifest(pkg, 'demo/package.json')
      const mod = (await import(join(root, 'packages/policies/demo/src/index.ts'))) as Record<string, unknown>
      const source = { name: pkg.name, version: pkg.version, manifest }
      expect(ownPlugins(pluginsOf(mod), source).map((p) => p.meta.name)).toEqual(['demo'])
      expect(() => checkAgainstManifest(ownPlugins(pluginsOf(mod), source), source)).not.toThrow()
      expect(pkg.peerDependencies).toEqual({ '@moe-route/core': '^0.1.0' })
      expect(pkg.keywords).toEqual(expect.arrayContaining(['moe-plugin', 'moe-policy']))
      expect(pkg.scripts['lint:pkg']).toBe('publint --strict && attw --pack . --profile node16')
    })

    it('is listed for the CLI, the testkit run, the manifest check and the dist checks', () => {
      expect(names(firstPartyPluginPackages(root))).toContain('@moe-route/policy-demo') // CLI, testkit conformance
      expect(names(manifestPackages(root))).toContain('@moe-route/policy-demo') // manifest check, fuzz
      expect(names(publishedPackages(root))).toContain('@moe-route/policy-demo') // test/dist, lint:pkg
      const generated = readFileSync(join(root, 'packages/cli/src/first-party.generated.ts'), 'utf8')
      expect(generated).toContain("from '@moe-route/policy-demo'")
      const cli = JSON.parse(readFileSync(join(root, 'packages/cli/package.json'), 'utf8'))
      expect(cli.dependencies['@moe-route/policy-demo']).toBe('0.1.0')
      // and the list is then current: the check passes without another write
      expect(() => execFileSync(process.execPath, [script('first-party.mjs'), '--root', root], { stdio: 'pipe' })).not.toThrow()
    })
  })
})
