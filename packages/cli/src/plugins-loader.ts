/**
 * Loads plugins named by npm package in a config (`plugins: [...]`, or a `use` — including a
 * policy's `fallback.use` — that is not a registered name but looks like a package).
 * Resolution starts at the config's folder. Errors name the package and the config field.
 */
import { ErrorCodes, MoeError, isMoeError, type MoeConfig, type MoeIssue, type PluginRef, type PluginRegistry } from '@moe-route/core'
import { loadPlugins } from '@moe-route/core/node'

const KINDS = ['router', 'dispatcher', 'placement', 'store', 'backend', 'policy'] as const

/** True when a `use` names an npm package or a file rather than a plugin name. */
export const looksLikePackage = (use: string): boolean =>
  use.startsWith('@') || use.startsWith('moe-route-') || use.startsWith('.') || use.startsWith('/')

/** Every package (or file) the config asks to load, with the config field that names it. */
export function pluginSpecs(raw: MoeConfig, registry: PluginRegistry): Map<string, string> {
  const specs = new Map<string, string>()
  if (!raw || typeof raw !== 'object') return specs
  if (Array.isArray(raw.plugins)) raw.plugins.forEach((s, i) => typeof s === 'string' && s.length > 0 && !specs.has(s) && specs.set(s, `/plugins/${i}`))
  const refs: [unknown, string][] = [
    [raw.router, '/router'],
    [raw.dispatcher, '/dispatcher'],
    [raw.placement, '/placement'],
    [raw.store, '/store'],
    [raw.backend, '/backend'],
  ]
  if (Array.isArray(raw.policies)) {
    raw.policies.forEach((p, i) => {
      refs.push([p, `/policies/${i}`])
      if (p && typeof p === 'object') refs.push([p.fallback, `/policies/${i}/fallback`])
    })
  }
  for (const [ref, path] of refs) {
    const use = (ref as PluginRef | undefined)?.use
    if (typeof use !== 'string' || specs.has(use)) continue
    if (KINDS.some((k) => registry.has(k, use))) continue
    if (looksLikePackage(use)) specs.set(use, `${path}/use`)
  }
  return specs
}

/**
 * Imports and registers every package the config names that the registry does not know yet.
 * Throws the first failure (a MoeError whose `details.path` is the config field naming the
 * package); with `issues`, records every failure there instead and loads the rest.
 */
export async function loadConfigPlugins(raw: MoeConfig, registry: PluginRegistry, from: string, issues?: MoeIssue[]): Promise<void> {
  for (const [spec, path] of pluginSpecs(raw, registry)) {
    try {
      await loadPlugins([spec], { registry, from })
    } catch (e) {
      const err = isMoeError(e)
        ? new MoeError(e.code, e.message, { ...e.details, path: e.details.path ?? path, plugin: e.details.plugin ?? spec }, { cause: e.cause ?? e })
        : new MoeError(ErrorCodes.PLUGIN_LOAD_FAILED, `loading plugin package ${spec} failed: ${(e as Error)?.message ?? String(e)}`, { plugin: spec, path }, { cause: e })
      if (!issues) throw err
      issues.push({ code: err.code, path: err.details.path ?? path, message: err.message, plugin: spec })
    }
  }
}
