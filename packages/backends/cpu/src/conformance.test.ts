/**
 * This package's plugins through the testkit (as each ESLint rule's test calls RuleTester): the
 * manifest in package.json against the module, and the conformance suite of every policy it exports.
 */
import { pluginPackageConformance } from '@moe-route/testkit'
import { describe, it } from 'vitest'
import packageJson from '../package.json' with { type: 'json' }
import * as mod from './index.js'

void pluginPackageConformance(mod, packageJson, { describe, it, runs: 60 })
