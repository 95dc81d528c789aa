import type { Plugin, PluginDefinition, PluginKind } from './types.js'

/** Brand set on every plugin by the define helpers (like fastify-plugin's `plugin-meta`). */
export const PLUGIN_BRAND: unique symbol = Symbol.for('@moe-route/core:plugin') as never

/** Defines a plugin of a kind given at run time (what the `define*` helpers call; loaders use it for plugins read from manifests). */
export function definePluginOfKind<K extends PluginKind, O>(kind: K, def: PluginDefinition<K, O>): Plugin<K, O> {
  return define(kind, def)
}

function define<K extends PluginKind, O>(kind: K, def: PluginDefinition<K, O>): Plugin<K, O> {
  const plugin = { ...def, kind } as Plugin<K, O>
  Object.defineProperty(plugin, PLUGIN_BRAND, { value: true, enumerable: false })
  return plugin
}

/**
 * Defines a routing policy plugin.
 * @example
 * export default definePolicy<{ capacityFactor: number }>({
 *   meta: { name: 'my-drop', package: 'moe-route-policy-my-drop', version: '1.0.0', core: '^0.1.0',
 *           schema: { type: 'object', properties: { capacityFactor: { type: 'number', exclusiveMinimum: 0 } } },
 *           defaultOptions: { capacityFactor: 1.5 } },
 *   create(options) { return { name: 'my-drop', apply: (routing) => ({ routing, dropped: [] }) } },
 * })
 */
export const definePolicy = <O>(def: PluginDefinition<'policy', O>) => define('policy', def)
/** Defines a router plugin. */
export const defineRouter = <O>(def: PluginDefinition<'router', O>) => define('router', def)
/** Defines a dispatcher plugin. */
export const defineDispatcher = <O>(def: PluginDefinition<'dispatcher', O>) => define('dispatcher', def)
/** Defines an expert-store plugin. */
export const defineStore = <O>(def: PluginDefinition<'store', O>) => define('store', def)
/** Defines a placement plugin. */
export const definePlacement = <O>(def: PluginDefinition<'placement', O>) => define('placement', def)
/** Defines a backend plugin. */
export const defineBackend = <O>(def: PluginDefinition<'backend', O>) => define('backend', def)

/** True if `value` was made by one of the define helpers (from any copy of core). */
export function isPlugin(value: unknown): value is Plugin {
  return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[PLUGIN_BRAND] === true
}
