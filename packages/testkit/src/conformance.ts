/**
 * `policyConformance`: registers the whole conformance suite of a policy plugin with the
 * test runner (vitest, jest, mocha or node:test), ESLint-RuleTester style.
 */
import { CORE_VERSION, isPlugin, type Plugin } from '@moe-route/core'
import {
  checkInvalidOptions,
  checkOptionsSchema,
  checkPolicyDeterminism,
  checkPolicyInEngine,
  checkPolicyInvariants,
  checkPolicyMeta,
  type PropertySettings,
} from './checks.js'
import { detectRunner, type TestRunner } from './runner.js'

/** Options of {@link policyConformance}. */
export interface PolicyConformanceOptions extends PropertySettings, Partial<TestRunner> {
  /**
   * Option sets to run the behavioural checks with, besides the defaults (`{}`). Each is
   * merged over `meta.defaultOptions` like a config's `options`.
   */
  readonly options?: readonly Record<string, unknown>[]
  /** More options objects that must be rejected (besides those derived from the schema). */
  readonly invalidOptions?: readonly unknown[]
  /** Your package.json (`name`, `version`, `moe-route`): `meta.package`/`meta.version` must match it, and its manifest must declare the plugin as its code does. */
  readonly packageJson?: { readonly name: string; readonly version: string; readonly 'moe-route'?: unknown }
  /** Do not require `additionalProperties: false` in the options schema. */
  readonly allowUnknownOptions?: boolean
}

/**
 * Registers the conformance suite of a policy plugin: meta and core range, options schema
 * and defaults, invalid options rejected with the plugin's name, and, for generated
 * routings (fast-check), well-formed output, conservation of pairs, capacity, determinism,
 * immutability of the input, and a run inside `MoeEngine`.
 *
 * `describe`/`it` come from the options, else the globals, else `vitest` (under vitest) or
 * `node:test`. When they have to be imported the tests are registered after an `await`,
 * so await the call at the top level of the test file.
 * @example
 * // vitest
 * import { describe, it } from 'vitest'
 * import { policyConformance } from '@moe-route/testkit'
 * import entropyDrop from '../src/index.js'
 * policyConformance(entropyDrop, { describe, it, options: [{ capacityFactor: 1 }] })
 * @example
 * // node:test
 * import { describe, it } from 'node:test'
 * await policyConformance(entropyDrop, { describe, it })
 */
// eslint-disable-next-line @typescript-eslint/no-redundant-type-constituents -- names the expected type; anything is accepted and checked
export function policyConformance(plugin: Plugin<'policy'> | unknown, options: PolicyConformanceOptions = {}): Promise<void> {
  const runner = detectRunner(options)
  if (runner instanceof Promise) return runner.then((r) => register(plugin, options, r))
  register(plugin, options, runner)
  return Promise.resolve()
}

function register(plugin: unknown, options: PolicyConformanceOptions, { describe, it }: TestRunner): void {
  const label = isPlugin(plugin) ? `${plugin.meta.name} (${plugin.meta.package}@${plugin.meta.version})` : String(plugin)
  describe(`moe-route policy conformance: ${label}`, () => {
    it('is a policy plugin with complete meta', () => checkPolicyMeta(plugin, options.packageJson))
    it(`supports the installed @moe-route/core ${CORE_VERSION}`, () => checkPolicyMeta(plugin))
    it('has an options schema that compiles and accepts its defaults', () => {
      checkPolicyMeta(plugin)
      checkOptionsSchema(plugin)
    })
    it('rejects invalid options with MOE_ROUTE_ERR_PLUGIN_OPTIONS_INVALID naming the plugin', () => {
      checkPolicyMeta(plugin)
      checkInvalidOptions(plugin, options.invalidOptions, { allowUnknownOptions: options.allowUnknownOptions })
    })
    const sets: Record<string, unknown>[] = [{}, ...(options.options ?? [])]
    for (const set of sets) {
      describe(Object.keys(set).length === 0 ? 'with default options' : `with options ${JSON.stringify(set)}`, () => {
        const p = () => {
          checkPolicyMeta(plugin)
          return plugin
        }
        it('keeps the routing well-formed: ids in range, weights finite and ≥ 0', () => checkPolicyInvariants(p(), set, ['shape'], options))
        it('accounts for every pair: kept, moved or reported dropped with a reason', () => checkPolicyInvariants(p(), set, ['conservation'], options))
        it('respects the capacity it reports', () => checkPolicyInvariants(p(), set, ['capacity'], options))
        it('keeps only pairs with a weight > 0', () => checkPolicyInvariants(p(), set, ['weight'], options))
        it('is deterministic for the same input and seed, and leaves its input unchanged', () => checkPolicyDeterminism(p(), set, options))
        it('runs inside MoeEngine from a config', () => checkPolicyInEngine(p(), set))
      })
    }
  })
}
