/**
 * The conformance suite against every first-party policy: each package under
 * packages/policies is imported (devDependencies of the testkit) and every policy plugin it
 * exports runs the full suite, with its package.json checked against its meta.
 */
import { isPlugin, type Plugin } from '@moe-route/core'
import * as c2r from '@moe-route/policy-c2r'
import * as capacityDrop from '@moe-route/policy-capacity-drop'
import * as deviceCapacity from '@moe-route/policy-device-capacity'
import * as dynamicGating from '@moe-route/policy-dynamic-gating'
import * as expandedDrop from '@moe-route/policy-expanded-drop'
import * as expertBuffer from '@moe-route/policy-expert-buffer'
import * as expertDrop from '@moe-route/policy-expert-drop'
import * as placement from '@moe-route/policy-placement'
import * as reroute from '@moe-route/policy-reroute'
import * as spareCapacityReroute from '@moe-route/policy-spare-capacity-reroute'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { policyConformance } from './index.js'

const modules: Record<string, Record<string, unknown>> = {
  '@moe-route/policy-c2r': c2r,
  '@moe-route/policy-capacity-drop': capacityDrop,
  '@moe-route/policy-device-capacity': deviceCapacity,
  '@moe-route/policy-dynamic-gating': dynamicGating,
  '@moe-route/policy-expanded-drop': expandedDrop,
  '@moe-route/policy-expert-buffer': expertBuffer,
  '@moe-route/policy-expert-drop': expertDrop,
  '@moe-route/policy-placement': placement,
  '@moe-route/policy-reroute': reroute,
  '@moe-route/policy-spare-capacity-reroute': spareCapacityReroute,
}
const policiesDir = fileURLToPath(new URL('../../policies', import.meta.url))
const packageJsons = new Map(
  readdirSync(policiesDir).map((d) => {
    const pkg = JSON.parse(readFileSync(join(policiesDir, d, 'package.json'), 'utf8')) as { name: string; version: string }
    return [pkg.name, pkg] as const
  }),
)

/** Every policy plugin a module exports (default or named), once each. */
function policiesOf(mod: Record<string, unknown>): Plugin<'policy'>[] {
  const found = new Set<Plugin<'policy'>>()
  for (const v of Object.values(mod)) if (isPlugin(v) && v.kind === 'policy') found.add(v as Plugin<'policy'>)
  return [...found]
}

/**
 * Per-package settings, each with its reason:
 * - expanded-drop: its default candidates are the experts local to a token's device, which
 *   needs a placement over more than one device (it says so when there is one device).
 * - device-capacity: enforces a per-device budget; the `capacity` it reports is the
 *   per-expert share of that budget, which a single expert may exceed by design.
 */
const settings: Record<string, Parameters<typeof policyConformance>[1]> = {
  '@moe-route/policy-expanded-drop': { routings: { minDevices: 2 } },
  '@moe-route/policy-device-capacity': { capacity: false },
}

const all = Object.entries(modules).flatMap(([pkg, mod]) => policiesOf(mod).map((plugin) => ({ pkg, plugin })))

describe('first-party policies', () => {
  it('every package under packages/policies is imported here', () => {
    expect(Object.keys(modules).sort()).toEqual([...packageJsons.keys()].sort())
  })

  it('the capacity policies every deployment uses are there', () => {
    expect(all.map((p) => p.plugin.meta.name)).toEqual(
      expect.arrayContaining(['capacity-drop', 'expanded-drop', 'reroute', 'device-capacity', 'expert-drop', 'spare-capacity-reroute']),
    )
  })
})

for (const { pkg, plugin } of all) {
  void policyConformance(plugin, { describe, it, packageJson: packageJsons.get(pkg), runs: 60, ...settings[pkg] })
}
