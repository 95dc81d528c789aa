/** @moe-route/core/node — Node-only helpers: plugin manifests, safe resolution and loading of plugin packages, time limits and isolation. */
export { describePlugins, importPluginPackage, loadPlugins, pluginsOf, resolveEntry, type LoadPluginsOptions, type RunPluginOptions } from './load-plugins.js'
export { findInstalledPlugins, type FindInstalledPluginsOptions, type InstalledPluginPackage } from './discover.js'
export { MANIFEST_FIELD, PLUGIN_KINDS, canonicalJson, checkAgainstManifest, describedPlugin, manifestOf, ownPlugins, readManifest, type ManifestPlugin, type ManifestSource, type PluginManifest } from './manifest.js'
export { isLocalSpec, isPackageName, resolvePluginPackage, type PluginPackage, type ResolvePluginOptions } from './resolve.js'
export { boundedPlugin, callWithin, timeoutError, withTimeout } from './bounded.js'
export { ISOLATABLE_KINDS, isolatedPlugins, type IsolateOptions } from './isolate.js'
export { armWatchdog, startWatchdog } from './watchdog.js'
