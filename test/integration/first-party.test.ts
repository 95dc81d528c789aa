/**
 * First-party plugin packages are found from the workspace, never from hand-kept lists: the
 * CLI's generated list is up to date, every plugin package runs the testkit from its own test
 * file (the testkit imports no policy package), and a package made by scripts/new-package.mjs
 * --plugin reaches the CLI (generated module and dependencies), the testkit's conformance run
 * (its own generated test file), the manifest check and the packaging checks with no other edit.
 */
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
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

  it('each runs the testkit from its own test file; the testkit depends on no plugin package', () => {
    for (const { dir, pkg } of firstPartyPluginPackages()) {
      const test = join(ROOT, dir, 'src/conformance.test.ts')
      expect([pkg.name, existsSync(test)]).toEqual([pkg.name, true])
      const text = readFileSync(test, 'utf8')
      expect(text).toMatch(/import \* as mod from '\.\/index\.js'/)
      expect(text).toMatch(/pluginPackageConformance\(mod, packageJson, /)
      expect([pkg.name, (pkg.devDependencies as Record<string, string> | undefined)?.['@moe-route/testkit']]).toEqual([pkg.name, '0.1.0'])
    }
    const testkit = JSON.parse(readFileSync(join(ROOT, 'packages/testkit/package.json'), 'utf8'))
    const plugins = new Set(firstPartyPluginPackages().map(({ pkg }) => pkg.name))
    for (const field of ['dependencies', 'devDependencies', 'peerDependencies', 'optionalDependencies']) {
      expect([field, Object.keys(testkit[field] ?? {}).filter((n) => plugins.has(n))]).toEqual([field, []])
    }
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

    it('runs the testkit from its own generated test file, and its starter passes', async () => {
      const pkg = JSON.parse(readFileSync(join(root, 'packages/policies/demo/package.json'), 'utf8'))
      expect(pkg.devDependencies['@moe-route/testkit']).toBe('0.1.0')
      const text = readFileSync(join(root, 'packages/policies/demo/src/conformance.test.ts'), 'utf8')
      // the same call every first-party package makes (vitest collects src/**/*.test.ts)
      expect(text).toContain("import * as mod from './index.js'")
      expect(text).toContain("import packageJson from '../package.json' with { type: 'json' }")
      expect(text).toMatch(/void pluginPackageConformance\(mod, packageJson, \{ describe, it, runs: \d+ \}\)/)
      // what it registers, run here: the manifest check and the starter policy's whole suite
      const { pluginPackageConformance } = await import('@moe-route/testkit')
      const mod = (await import(join(root, 'packages/policies/demo/src/index.ts'))) as Record<string, unknown>
      const tests: [string, () => unknown][] = []
      const path: string[] = []
      const describeFn = (name: string, fn: () => void) => {
        path.push(name)
        fn()
        path.pop()
      }
      await pluginPackageConformance(mod, pkg, { describe: describeFn, it: (name, fn) => void tests.push([[...path, name].join(' > '), fn]), runs: 5 })
      expect(tests.some(([n]) => n.includes('moe-route policy conformance: demo'))).toBe(true)
      for (const [name, fn] of tests) await expect(Promise.resolve().then(fn), name).resolves.not.toThrow()
      // and it fails a package whose manifest declares a policy the module does not export
      const failing: (() => unknown)[] = []
      await pluginPackageConformance({}, pkg, { describe: (_n, fn) => fn(), it: (_n, fn) => void failing.push(fn) })
      expect(() => failing[0]()).toThrow(/declares \[demo\]/)
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
