/**
 * The conformance suite against every first-party policy: every workspace package with a
 * `moe-route` manifest (scripts/workspace.mjs) is imported by name and every policy plugin it
 * exports as its own runs the full suite, with its package.json checked against its meta. A
 * package made by scripts/new-package.mjs is picked up here with no edit.
 */
import { isPlugin, type Plugin } from '@moe-route/core'
import { describe, expect, it } from 'vitest'
import { firstPartyPluginPackages } from '../../../scripts/workspace.mjs'
import { policyConformance } from './index.js'

const packages = firstPartyPluginPackages()
const modules = new Map<string, Record<string, unknown>>()
for (const { pkg } of packages) modules.set(pkg.name, (await import(pkg.name)) as Record<string, unknown>)

/** Every policy plugin a module exports as its own (default, named or in an exported list), once each. */
function policiesOf(mod: Record<string, unknown>, name: string): Plugin<'policy'>[] {
  const found = new Set<Plugin<'policy'>>()
  const visit = (v: unknown) => {
    if (isPlugin(v) && v.kind === 'policy' && v.meta.package === name) found.add(v as Plugin<'policy'>)
    else if (Array.isArray(v)) v.forEach(visit)
  }
  Object.values(mod).forEach(visit)
  return [...found]
}

/**
 * Per-policy settings, each with its reason:
 * - expanded-drop: its default candidates are the experts local to a token's device, which
 *   needs a placement over more than one device (it says so when there is one device).
 * - device-capacity: enforces a per-device budget; the `capacity` it reports is the
 *   per-expert share of that budget, which a single expert may exceed by design.
 */
const settings: Record<string, Parameters<typeof policyConformance>[1]> = {
  'expanded-drop': { routings: { minDevices: 2 } },
  'device-capacity': { capacity: false },
}

const all = packages.flatMap(({ pkg }) => policiesOf(modules.get(pkg.name)!, pkg.name).map((plugin) => ({ pkg, plugin })))

describe('first-party policies', () => {
  it('every policy a package manifest declares is exported by its module', () => {
    for (const { pkg } of packages) {
      const manifest = pkg['moe-route'] as { plugins?: { kind: string; name: string }[] }
      const declared = (manifest.plugins ?? []).filter((p) => p.kind === 'policy').map((p) => p.name).sort()
      expect([pkg.name, policiesOf(modules.get(pkg.name)!, pkg.name).map((p) => p.meta.name).sort()]).toEqual([pkg.name, declared])
    }
  })

  it('the capacity policies every deployment uses are there', () => {
    expect(all.map((p) => p.plugin.meta.name)).toEqual(
      expect.arrayContaining(['capacity-drop', 'expanded-drop', 'reroute', 'device-capacity', 'expert-drop', 'spare-capacity-reroute']),
    )
  })
})

for (const { pkg, plugin } of all) {
  void policyConformance(plugin, { describe, it, packageJson: pkg, runs: 60, ...settings[plugin.meta.name] })
}
