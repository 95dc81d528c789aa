/**
 * Plugins named by npm package in a config (`plugins: [...]`, or a `use` — including a
 * policy's `fallback.use` — that is not a registered name but looks like a package or a path).
 * Two steps (see @moe-route/core/node): every package is first *described* from its
 * package.json `moe-route` manifest, so the whole config is checked while no plugin code has
 * run; only a command that runs the layer then *imports* the packages whose plugins the config
 * uses, bounded in time (or isolated in a worker thread). Resolution starts at the config's
 * folder; every refusal names the config field. {@link loadConfig} runs both steps.
 */
import type { MoeConfig, PluginRef } from '../config/config.schema.js'
import { ErrorCodes, MoeError, isMoeError, type MoeIssue } from '../errors.js'
import type { PluginRegistry } from '../plugin/registry.js'
import type { PluginKind } from '../plugin/types.js'
import { describePlugins, importPluginPackage } from './load-plugins.js'
import { PLUGIN_KINDS } from './manifest.js'
import { isLocalSpec, type PluginPackage } from './resolve.js'

/** How plugin packages may run (the CLI's global flags; a config may add isolation and a time limit). */
export interface PluginSecurity {
  /** `--allow-local-plugins`: a `use` or `plugins[]` entry may be a file inside the project. */
  readonly allowLocalPlugins?: boolean
  /** `--isolate-plugins`: run package plugins in a worker thread. */
  readonly isolatePlugins?: boolean
}

/** True when a `use` names an npm package or a file rather than a plugin name. */
export const looksLikePackage = (use: string): boolean => use.startsWith('@') || use.startsWith('moe-route-') || isLocalSpec(use)

/** Every config field holding a plugin reference, with its kind. */
function pluginRefs(raw: MoeConfig): [PluginKind, unknown, string][] {
  const refs: [PluginKind, unknown, string][] = [
    ['router', raw.router, '/router'],
    ['dispatcher', raw.dispatcher, '/dispatcher'],
    ['placement', raw.placement, '/placement'],
    ['store', raw.store, '/store'],
    ['backend', raw.backend, '/backend'],
  ]
  if (Array.isArray(raw.policies)) {
    raw.policies.forEach((p, i) => {
      refs.push(['policy', p, `/policies/${i}`])
      if (p && typeof p === 'object') refs.push(['policy', p.fallback, `/policies/${i}/fallback`])
    })
  }
  return refs
}

/** Every package (or file) the config asks to load, with the config field that names it. */
export function pluginSpecs(raw: MoeConfig, registry: PluginRegistry): Map<string, string> {
  const specs = new Map<string, string>()
  if (!raw || typeof raw !== 'object') return specs
  if (Array.isArray(raw.plugins)) raw.plugins.forEach((s, i) => typeof s === 'string' && s.length > 0 && !specs.has(s) && specs.set(s, `/plugins/${i}`))
  for (const [, ref, path] of pluginRefs(raw)) {
    const use = (ref as PluginRef | undefined)?.use
    if (typeof use !== 'string' || specs.has(use)) continue
    if (PLUGIN_KINDS.some((k) => registry.has(k, use))) continue
    if (looksLikePackage(use)) specs.set(use, `${path}/use`)
  }
  return specs
}

/** Where plugins resolve from and which local files they may be. */
export interface DescribeOptions {
  /** The config's folder. */
  readonly from: string
  /** The folder local plugin files must lie in. */
  readonly projectRoot: string
  /** Record failures here instead of throwing (validate). */
  readonly issues?: MoeIssue[]
}

/** A described package and the config field that named it. */
export interface ConfigPackage {
  readonly pkg: PluginPackage
  readonly path: string
}

/**
 * Reads the manifest of every package the config names and registers the plugins they
 * declare into `registry`. Runs no plugin code (local files are described too; running them
 * needs the opt-in). Throws the first failure as a MoeError whose `details.path` is the config
 * field naming the package; with `issues`, records every failure there and goes on.
 */
export function describeConfigPlugins(raw: MoeConfig, registry: PluginRegistry, o: DescribeOptions): ConfigPackage[] {
  const out: ConfigPackage[] = []
  for (const [spec, path] of pluginSpecs(raw, registry)) {
    try {
      for (const pkg of describePlugins([spec], { registry, from: o.from, projectRoot: o.projectRoot, allowLocal: true })) out.push({ pkg, path })
    } catch (e) {
      if (!o.issues) throw atPath(e, spec, path)
      const err = isMoeError(e) ? e : atPath(e, spec, path)
      o.issues.push({ code: err.code, path, message: err.message, plugin: spec })
    }
  }
  return out
}

/**
 * Imports the described packages whose plugins the config uses (a package listed in `plugins`
 * but not used runs nothing) and registers them into `into`: in this thread with every call
 * time-bounded, or in worker threads with `isolate`. A local file needs `allowLocalPlugins`.
 */
export async function importUsedPlugins(
  raw: MoeConfig,
  described: PluginRegistry,
  packages: readonly ConfigPackage[],
  into: PluginRegistry,
  o: PluginSecurity & { readonly timeoutMs?: number },
): Promise<void> {
  const byName = new Map(packages.map((p) => [p.pkg.name, p]))
  const used = new Map<string, ConfigPackage>()
  for (const [kind, ref] of pluginRefs(raw)) {
    const use = (ref as PluginRef | undefined)?.use
    if (typeof use !== 'string' || !described.has(kind, use)) continue
    const p = byName.get(described.get(kind, use).meta.package)
    if (p) used.set(p.pkg.name, p)
  }
  for (const { pkg, path } of used.values()) {
    if (pkg.local && !o.allowLocalPlugins) {
      throw new MoeError(
        ErrorCodes.PLUGIN_PATH_REFUSED,
        `${path}: plugin reference ${JSON.stringify(pkg.spec)} is a local file (${pkg.entry}); running it needs the explicit opt-in: moe-route --allow-local-plugins`,
        { path, plugin: pkg.spec },
      )
    }
    try {
      for (const plugin of await importPluginPackage(pkg, { ...(o.timeoutMs !== undefined ? { timeoutMs: o.timeoutMs } : {}), ...(o.isolatePlugins ? { isolate: true } : {}) })) {
        into.register(plugin, pkg.spec)
      }
    } catch (e) {
      throw atPath(e, pkg.spec, path)
    }
  }
}

/** The error naming the config field: `details.path` and `details.plugin` set, the message starting with the path. */
function atPath(e: unknown, spec: string, path: string): MoeError {
  if (isMoeError(e)) {
    const at = e.details.path ?? path
    const message = e.message.startsWith(`${at}: `) ? e.message : `${at}: ${e.message}`
    return new MoeError(e.code, message, { ...e.details, path: at, plugin: e.details.plugin ?? spec }, { cause: e.cause ?? e })
  }
  return new MoeError(ErrorCodes.PLUGIN_LOAD_FAILED, `${path}: loading plugin package ${spec} failed: ${(e as Error)?.message ?? String(e)}`, { plugin: spec, path }, { cause: e })
}
