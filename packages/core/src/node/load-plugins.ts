/**
 * Plugins from npm packages (Node only: `@moe-route/core/node`). The library API always takes
 * plugin objects; this serves config files and the CLI, in two steps:
 *
 * 1. {@link describePlugins}: find each package (see resolve.ts), read its package.json
 *    `moe-route` manifest and register what it declares. No code of the package runs, so
 *    checking a config (names, core ranges, options) is safe on any input.
 * 2. {@link importPluginPackage}: for a command that runs the plugin, import it — with a time
 *    limit, in this thread with every call bounded, or isolated in a worker — and check that
 *    what it exports equals its manifest.
 */
import { pathToFileURL } from 'node:url'
import { ErrorCodes, MoeError, isMoeError } from '../errors.js'
import { DEFAULT_PLUGIN_TIMEOUT_MS } from '../limits.js'
import { isPlugin } from '../plugin/define.js'
import type { PluginRegistry, RegisteredPlugin } from '../plugin/registry.js'
import type { Plugin } from '../plugin/types.js'
import { boundedPlugin, timeoutError, withTimeout } from './bounded.js'
import { isolatedPlugins } from './isolate.js'
import { checkAgainstManifest, describedPlugin, ownPlugins } from './manifest.js'
import { resolvePluginPackage, type PluginPackage, type ResolvePluginOptions } from './resolve.js'
import { armWatchdog } from './watchdog.js'

/** How imported plugin code runs. */
export interface RunPluginOptions {
  /** Time limit of the import and of each call, ms (default {@link DEFAULT_PLUGIN_TIMEOUT_MS}). */
  readonly timeoutMs?: number
  /** Import and run the package in a worker thread (see isolate.ts). */
  readonly isolate?: boolean
}

/** Options of {@link loadPlugins}. */
export interface LoadPluginsOptions extends RunPluginOptions, Partial<ResolvePluginOptions> {
  /** Registry to register the plugins into. */
  readonly registry: PluginRegistry
}

/**
 * Reads the manifests of `specs` and registers the plugins they declare, running nothing
 * (each registered plugin's `create` refuses). Returns the packages, for
 * {@link importPluginPackage} later.
 * @throws the first failure, with `details.plugin` set to its spec (see resolvePluginPackage
 * and readManifest for the codes); the registry's errors (core range, defaults, duplicates).
 */
export function describePlugins(specs: readonly string[], options: ResolvePluginOptions & { readonly registry: PluginRegistry }): PluginPackage[] {
  const out: PluginPackage[] = []
  for (const spec of specs) {
    const pkg = named(spec, () => resolvePluginPackage(spec, options))
    for (const entry of pkg.manifest.plugins) named(spec, () => options.registry.register(describedPlugin(entry, { name: pkg.name, version: pkg.version, manifest: pkg.manifest }), spec))
    out.push(pkg)
  }
  return out
}

/**
 * Imports a described package to run it: in this thread (the import raced against the time
 * limit, every call then bounded by it) or, with `isolate`, in a worker thread. What the
 * module exports must equal its manifest.
 * @throws MOE_ROUTE_ERR_PLUGIN_TIMEOUT when the import does not settle in time (a top-level
 * await that never resolves included); MOE_ROUTE_ERR_PLUGIN_LOAD_FAILED when it throws;
 * MOE_ROUTE_ERR_PLUGIN_INVALID when it exports no plugin; MOE_ROUTE_ERR_PLUGIN_MANIFEST_MISMATCH.
 */
export async function importPluginPackage(pkg: PluginPackage, options: RunPluginOptions = {}): Promise<Plugin[]> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_PLUGIN_TIMEOUT_MS
  if (options.isolate) return named(pkg.spec, () => isolatedPlugins(pkg, { timeoutMs }))
  let mod: Record<string, unknown>
  // the timer settles an import that waits forever; an import that blocks the thread is the
  // process watchdog's (when a command line started one), 2 s later
  const disarm = armWatchdog(`plugin ${pkg.spec} did not finish import within ${timeoutMs} ms`, timeoutMs + 2000)
  try {
    mod = (await withTimeout(import(pathToFileURL(pkg.entry).href), timeoutMs, () => timeoutError(pkg.spec, 'import', timeoutMs))) as Record<string, unknown>
  } catch (cause) {
    if (isMoeError(cause)) throw cause
    throw new MoeError(ErrorCodes.PLUGIN_LOAD_FAILED, `importing plugin package ${pkg.spec} failed: ${(cause as Error)?.message ?? String(cause)}`, { plugin: pkg.spec, file: pkg.entry }, { cause })
  } finally {
    disarm()
  }
  const source = { name: pkg.name, version: pkg.version, manifest: pkg.manifest, partial: pkg.local }
  const plugins = ownPlugins(pluginsOf(mod), source)
  if (plugins.length === 0) {
    throw new MoeError(ErrorCodes.PLUGIN_INVALID, `${pkg.spec} exports no moe-route plugin (expected a default export made by definePolicy/defineRouter/...)`, { plugin: pkg.spec, file: pkg.entry })
  }
  named(pkg.spec, () => checkAgainstManifest(plugins, source))
  return plugins.map((p) => boundedPlugin(p, timeoutMs))
}

/**
 * Finds, checks, imports and registers plugin packages in one go (describe, then import).
 * @example
 * await loadPlugins(['moe-route-policy-entropy-drop'], { registry, isolate: true })
 */
export async function loadPlugins(specs: readonly string[], options: LoadPluginsOptions): Promise<RegisteredPlugin[]> {
  const from = options.from ?? process.cwd()
  const loaded: RegisteredPlugin[] = []
  for (const spec of specs) {
    const pkg = named(spec, () => resolvePluginPackage(spec, { from, ...(options.allowLocal ? { allowLocal: true } : {}), ...(options.projectRoot ? { projectRoot: options.projectRoot } : {}) }))
    for (const p of await importPluginPackage(pkg, options)) {
      named(spec, () => options.registry.register(p, spec))
      loaded.push(options.registry.list(p.kind).find((r) => r.name === p.meta.name)!)
    }
  }
  return loaded
}

/** Finds the file a plugin reference would import, after every check (nothing is imported). */
export function resolveEntry(spec: string, from: string, options: Omit<ResolvePluginOptions, 'from'> = {}): string {
  return resolvePluginPackage(spec, { ...options, from }).entry
}

/** Runs `fn`; a MoeError it throws gets `details.plugin` (when unset) and the spec in its message (when it lacks it). */
function named<T>(spec: string, fn: () => T): T {
  const wrap = (e: unknown): never => {
    if (isMoeError(e)) {
      if (e.message.includes(spec)) throw e
      throw new MoeError(e.code, `${spec}: ${e.message}`, { ...e.details, plugin: e.details.plugin ?? spec }, { cause: e })
    }
    throw e
  }
  try {
    const r = fn()
    if (r && typeof (r as { then?: unknown }).then === 'function') return (r as unknown as Promise<unknown>).catch(wrap) as T
    return r
  } catch (e) {
    return wrap(e)
  }
}

/**
 * The moe-route plugins a module exports: its default export (a plugin, an array of them, or an
 * object holding them) and its named exports, each plugin once.
 */
export function pluginsOf(mod: Record<string, unknown>): Plugin[] {
  const found = new Set<Plugin>()
  const visit = (v: unknown, depth: number) => {
    if (isPlugin(v)) found.add(v)
    else if (Array.isArray(v)) v.forEach((x) => visit(x, depth))
    else if (depth < 2 && v && typeof v === 'object') for (const x of Object.values(v)) visit(x, depth + 1)
  }
  visit(mod.default, 1) // CJS interop nests the default once more
  for (const [k, v] of Object.entries(mod)) if (k !== 'default') visit(v, 2)
  return [...found]
}
