/**
 * Every first-party plugin, registered into the CLI's registry. Library users import
 * plugins explicitly instead; this list only serves the CLI and config files. The packages
 * come from first-party.generated.ts (every workspace package with a `moe-route` manifest,
 * written by scripts/first-party.mjs), so a new plugin package needs no edit here.
 */
import { createRegistry, type Plugin, type PluginRegistry } from '@moe-route/core'
import { pluginsOf } from '@moe-route/core/node'
import { firstPartyModules } from './first-party.generated.js'

/**
 * First-party plugins that need nothing beyond Node (the WebGPU backend is added lazily): the
 * plugins each first-party package exports as its own (`meta.package` is the package), in
 * package order.
 */
export const builtinPlugins: readonly Plugin[] = Object.entries(firstPartyModules).flatMap(([name, mod]) =>
  pluginsOf(mod as Record<string, unknown>).filter((p) => p.meta.package === name),
)

/** A registry with core's and every first-party plugin. */
export function builtinRegistry(extra: readonly Plugin[] = []): PluginRegistry {
  return createRegistry([...builtinPlugins, ...extra])
}
