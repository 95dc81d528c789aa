/** @moe-route/core/node — Node-only helpers (plugin loading by package name, discovery). */
export { loadPlugins, resolveEntry, type LoadPluginsOptions } from './load-plugins.js'
export { findInstalledPlugins, type FindInstalledPluginsOptions, type InstalledPluginPackage } from './discover.js'
