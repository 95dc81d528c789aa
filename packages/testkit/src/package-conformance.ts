/**
 * `pluginPackageConformance`: what a plugin package's own test file calls (as each ESLint rule's
 * test calls RuleTester) — its manifest against its module, then the conformance suite of every
 * policy the package exports as its own, with its package.json checked against each policy's
 * meta. First-party packages call it from `src/conformance.test.ts` (scripts/new-package.mjs
 * writes that file), so the testkit imports no policy package.
 */
import type { Plugin } from '@moe-route/core'
import { pluginsOf } from '@moe-route/core/node'
import { policyConformance, type PolicyConformanceOptions } from './conformance.js'
import { detectRunner, type TestRunner } from './runner.js'

/** A plugin package's package.json, as much as the checks read. */
export interface PluginPackageJson {
  readonly name: string
  readonly version: string
  readonly 'moe-route'?: unknown
}

/** Options of {@link pluginPackageConformance}. */
export interface PackageConformanceOptions extends Partial<TestRunner> {
  /** Settings of single policies by name (each with its reason in the calling test). Naming a policy the package does not export fails. */
  readonly policies?: Readonly<Record<string, Omit<PolicyConformanceOptions, 'describe' | 'it' | 'packageJson'>>>
  /** Generated cases per property check of every policy (default: policyConformance's). */
  readonly runs?: number
}

/** Every policy plugin a module exports as its own (`meta.package` is the package), once each. */
export function ownPolicies(mod: Record<string, unknown>, packageName: string): Plugin<'policy'>[] {
  return pluginsOf(mod).filter((p): p is Plugin<'policy'> => p.kind === 'policy' && p.meta.package === packageName)
}

/** The policy names a package.json `moe-route` manifest declares, sorted. */
function declaredPolicies(pkg: PluginPackageJson): string[] {
  const manifest = pkg['moe-route'] as { plugins?: { kind?: unknown; name?: unknown }[] } | undefined
  return (manifest?.plugins ?? []).filter((p) => p?.kind === 'policy').map((p) => String(p.name)).sort()
}

/**
 * Registers the checks of a plugin package with the test runner: the policies its manifest
 * declares are the ones its module exports as its own, and each of them passes
 * {@link policyConformance} (with `packageJson`). Like policyConformance, await it at the top
 * level when `describe`/`it` are not given.
 * @example
 * // src/conformance.test.ts of a plugin package
 * import { describe, it } from 'vitest'
 * import { pluginPackageConformance } from '@moe-route/testkit'
 * import packageJson from '../package.json' with { type: 'json' }
 * import * as mod from './index.js'
 * pluginPackageConformance(mod, packageJson, { describe, it })
 */
export function pluginPackageConformance(mod: Record<string, unknown>, packageJson: PluginPackageJson, options: PackageConformanceOptions = {}): Promise<void> {
  const runner = detectRunner(options)
  if (runner instanceof Promise) return runner.then((r) => register(mod, packageJson, options, r))
  register(mod, packageJson, options, runner)
  return Promise.resolve()
}

function register(mod: Record<string, unknown>, pkg: PluginPackageJson, options: PackageConformanceOptions, runner: TestRunner): void {
  const policies = ownPolicies(mod, pkg.name)
  runner.describe(`moe-route plugin package: ${pkg.name}`, () => {
    runner.it('exports every policy its manifest declares, and declares every policy it exports', () => {
      const exported = policies.map((p) => p.meta.name).sort()
      const declared = declaredPolicies(pkg)
      if (JSON.stringify(exported) !== JSON.stringify(declared)) {
        throw new Error(`${pkg.name}: the module exports the policies [${exported.join(', ')}] but its package.json manifest declares [${declared.join(', ')}]`)
      }
    })
    runner.it('has settings only for policies it exports', () => {
      const unknown = Object.keys(options.policies ?? {}).filter((n) => !policies.some((p) => p.meta.name === n))
      if (unknown.length > 0) throw new Error(`${pkg.name}: settings name policies it does not export: ${unknown.join(', ')}`)
    })
  })
  for (const plugin of policies) {
    void policyConformance(plugin, { ...runner, packageJson: pkg, ...(options.runs !== undefined ? { runs: options.runs } : {}), ...options.policies?.[plugin.meta.name] })
  }
}
