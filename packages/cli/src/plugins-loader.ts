/**
 * Loads plugins named by npm package in a config (`plugins: [...]`, or a `use` that is not
 * a registered name but looks like a package). Resolution starts at the config's folder.
 */
import { ErrorCodes, MoeError, type MoeConfig, type PluginRegistry } from '@moe-route/core'
import { loadPlugins } from '@moe-route/core/node'

const looksLikePackage = (use: string) => use.startsWith('@') || use.startsWith('moe-route-') || use.startsWith('.') || use.startsWith('/')

/** Imports and registers every package the config names that the registry does not know yet. */
export async function loadConfigPlugins(raw: MoeConfig, registry: PluginRegistry, from: string): Promise<void> {
  if (!raw || typeof raw !== 'object') return
  const specs = new Set<string>(Array.isArray(raw.plugins) ? raw.plugins : [])
  const refs = [raw.router, raw.dispatcher, raw.placement, raw.store, raw.backend, ...(Array.isArray(raw.policies) ? raw.policies : [])]
  for (const ref of refs) {
    if (!ref || typeof ref.use !== 'string') continue
    const kinds = ['router', 'dispatcher', 'placement', 'store', 'backend', 'policy'] as const
    if (kinds.some((k) => registry.has(k, ref.use))) continue
    if (looksLikePackage(ref.use)) specs.add(ref.use)
  }
  if (specs.size === 0) return
  try {
    await loadPlugins([...specs], { registry, from })
  } catch (e) {
    if (e instanceof Error && 'code' in e) throw e
    throw new MoeError(ErrorCodes.PLUGIN_LOAD_FAILED, String(e))
  }
}
