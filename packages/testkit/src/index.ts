/**
 * @moe-route/testkit — the conformance suite of moe-route policy plugins. Third-party authors
 * run it in their own tests (vitest, jest, mocha or node:test); first-party policies run it too.
 * @example
 * import { describe, it } from 'vitest'
 * import { policyConformance } from '@moe-route/testkit'
 * import myPolicy from '../src/index.js'
 * policyConformance(myPolicy, { describe, it })
 * @packageDocumentation
 */
export { policyConformance, type PolicyConformanceOptions } from './conformance.js'
export { ownPolicies, pluginPackageConformance, type PackageConformanceOptions, type PluginPackageJson } from './package-conformance.js'
export {
  ConformanceError,
  checkInvalidOptions,
  checkOptionsSchema,
  checkPolicyDeterminism,
  checkPolicyInEngine,
  checkPolicyInvariants,
  checkPolicyMeta,
  createPolicyFor,
  invalidOptionsFor,
  pluginContext,
  policyContextFor,
  type InvalidOptionsCase,
  type PropertySettings,
} from './checks.js'
export { checkOutcome, outcomeFingerprint, sameRouting, type CheckOutcomeOptions, type InvariantKind, type Violation } from './invariants.js'
export { cloneRouting, routerInputCase, routingCase, type RouterInputCase, type RoutingCase, type RoutingConstraints } from './arbitraries.js'
export { checkDispatcherLowering, checkLowering, checkRouterLowering, type LoweringOptions, type LoweringSettings } from './lowering.js'
export { CAPACITY_FORMULA_POLICIES, documentedCapacity, fuzzStacks, optionsArb, runStackCase, stackCase, type FuzzOptions, type FuzzReport, type FuzzViolation, type StackCase } from './fuzz.js'
export { detectRunner, runnerFromGlobals, type DescribeFn, type ItFn, type TestRunner } from './runner.js'
