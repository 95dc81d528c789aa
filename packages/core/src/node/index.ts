/** @moe-route/core/node — Node-only helpers (plugin loading by package name). */
export { loadPlugins, resolveEntry, type LoadPluginsOptions } from './load-plugins.js'
