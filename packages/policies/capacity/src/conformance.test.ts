/**
 * This package's plugins through the testkit (as each ESLint rule's test calls RuleTester): the
 * manifest in package.json against the module, and the conformance suite of every policy it exports.
 */
import { pluginPackageConformance } from '@moe-route/testkit'
import { describe, it } from 'vitest'
import packageJson from '../package.json' with { type: 'json' }
import * as mod from './index.js'

/**
 * Per-policy settings, each with its reason:
 * - expanded-drop: its default candidates are the experts local to a token's device, which
 *   needs a placement over more than one device (it says so when there is one device).
 * - device-capacity: enforces a per-device budget; the `capacity` it reports is the
 *   per-expert share of that budget, which a single expert may exceed by design.
 */
const policies = {
  'expanded-drop': { routings: { minDevices: 2 } },
  'device-capacity': { capacity: false },
}

void pluginPackageConformance(mod, packageJson, { describe, it, runs: 60, policies })
