/**
 * Config resolution for embedders that read configs from files (the CLI is one): read the file
 * (bounded; JSONC allowed; see config-file.ts), fill what it leaves out from defaults, apply
 * overrides, describe the plugin packages it names from their manifests, check everything —
 * schema, plugin names, core ranges, options, the caller's own checks — while no plugin code
 * has run, and only then import the packages whose plugins the config uses. The result is
 * resolved once: `createMoeContainer` trusts it for the returned registry and checks it no
 * second time.
 */
import { existsSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import type { MoeConfig } from '../config/config.schema.js'
import { trustResolvedConfig } from '../config/trust.js'
import { checkConfig, resolveConfig, type ResolvedConfig } from '../config/validate.js'
import { createRegistry } from '../container.js'
import { ErrorCodes, MoeError, isMoeError, type MoeIssue } from '../errors.js'
import type { PluginRegistry } from '../plugin/registry.js'
import type { Plugin } from '../plugin/types.js'
import { readConfigFile } from './config-file.js'
import { describeConfigPlugins, importUsedPlugins, type PluginSecurity } from './config-plugins.js'

/** A loaded config: the raw config as checked, the resolved one and the registry it was resolved for. */
export interface LoadedConfig {
  /** The config after defaults, overrides and `prepare`, before defaults of the schema are filled. */
  readonly raw: MoeConfig
  /** The resolved config (trusted by `createMoeContainer` with {@link LoadedConfig.registry}). */
  readonly config: ResolvedConfig
  /** Core's plugins, `plugins`, the lazy ones and those of the packages the config uses. */
  readonly registry: PluginRegistry
  /** The config file's absolute path, or `embedded default config`. */
  readonly source: string
}

/** Where a config comes from and what it is completed and checked with. */
export interface ConfigSourceOptions {
  /** The config file, relative to `cwd`; absent, `defaults` is the config. */
  readonly path?: string
  /** Folder a relative `path` starts from (default: the process's). */
  readonly cwd?: string
  /** The config used without a file, and where {@link ConfigSourceOptions.fillDefaults} takes what a file leaves out. */
  readonly defaults?: MoeConfig
  /** Completes a file's config from `defaults` (default: each top-level section the file leaves out is the default's). */
  readonly fillDefaults?: (file: MoeConfig) => MoeConfig
  /** Plugins known by name besides core's (an application's first-party plugins). */
  readonly plugins?: readonly Plugin[]
  /** Plugins this config needs that are loaded only when named (an optional backend). Refusals are MoeErrors whose `details.path` names the field. */
  readonly lazyPlugins?: (raw: MoeConfig) => Promise<readonly Plugin[]>
  /**
   * Rewrites the config before it is checked, from files beside it (`dir` is the config's
   * folder). With `issues`, records its problems there and returns what can still be checked.
   */
  readonly prepare?: (raw: MoeConfig, dir: string, issues?: MoeIssue[]) => MoeConfig
  /** Further checks of the resolved config (memory, workloads), run before any plugin code; each throws a MoeError whose `details.path` names the field. */
  readonly checks?: readonly ((config: ResolvedConfig, source: string) => void)[]
}

/** Options of {@link loadConfig}. */
export interface LoadConfigOptions extends ConfigSourceOptions, PluginSecurity {
  /** A command's changes (it also sees what the file itself said; `null` without a file). */
  readonly overrides?: (raw: MoeConfig, file: Partial<MoeConfig> | null) => MoeConfig
  /**
   * Import the plugins the config uses (default true). False: only their manifests are read
   * (the registry then describes them; creating one throws).
   */
  readonly execute?: boolean
}

/**
 * Reads, completes, checks and resolves a config, then loads the plugins it uses: every check
 * runs before any plugin code does. Throws the first refusal as a MoeError naming the field
 * (a config with problems: MOE_ROUTE_ERR_CONFIG_INVALID listing them all).
 * @example
 * const { config, registry, source } = await loadConfig({ path: 'moe.config.json', plugins: myPlugins })
 * const engine = createMoe({ config, registry, source }) // checked once, not again here
 */
export async function loadConfig(options: LoadConfigOptions = {}): Promise<LoadedConfig> {
  const { path } = options
  const cwd = options.cwd ?? process.cwd()
  const source = path ? resolve(cwd, path) : 'embedded default config'
  const name = path ?? source
  const dir = path ? dirname(source) : cwd
  const file = path ? filesFrom(configObject(readConfigFile(source), source), dir) : null
  const completed = file ? fill(file, options) : (options.defaults ?? ({} as MoeConfig))
  const overridden = options.overrides ? options.overrides(completed, file) : completed
  const raw = options.prepare ? options.prepare(overridden, dir) : overridden
  const described = createRegistry(options.plugins ?? [])
  const packages = describeConfigPlugins(raw, described, { from: dir, projectRoot: projectRoot(dir) })
  const lazy = options.lazyPlugins ? await options.lazyPlugins(raw) : []
  for (const p of lazy) described.register(p)
  // every check, with no plugin code run yet
  const config = resolveConfig(raw, described, name)
  for (const check of options.checks ?? []) check(config, name)
  if (options.execute === false) return { raw, config, registry: described, source }
  const registry = createRegistry([...(options.plugins ?? []), ...lazy])
  await importUsedPlugins(raw, described, packages, registry, {
    ...(raw.security?.pluginTimeoutMs !== undefined ? { timeoutMs: raw.security.pluginTimeoutMs } : {}),
    ...(options.allowLocalPlugins ? { allowLocalPlugins: true } : {}),
    ...(options.isolatePlugins || raw.security?.isolatePlugins ? { isolatePlugins: true } : {}),
  })
  // Each imported plugin equals its manifest (checked on import), so the config resolved
  // against the manifests holds for these plugins: it is not checked again.
  trustResolvedConfig(config, registry)
  return { raw, config, registry, source }
}

/** Every issue of a config file (schema, plugins, options and the caller's checks), without running any plugin. */
export async function collectConfigIssues(options: ConfigSourceOptions & { readonly path: string }): Promise<MoeIssue[]> {
  const source = resolve(options.cwd ?? process.cwd(), options.path)
  const dir = dirname(source)
  const issues: MoeIssue[] = []
  const parsed = readConfigFile(source)
  try {
    configObject(parsed, source)
  } catch (e) {
    if (!isMoeError(e)) throw e
    return [{ code: e.code, path: '/', message: e.message }]
  }
  const completed = fill(parsed as MoeConfig, options)
  const raw = options.prepare ? options.prepare(completed, dir, issues) : completed
  const registry = createRegistry(options.plugins ?? [])
  describeConfigPlugins(raw, registry, { from: dir, projectRoot: projectRoot(dir), issues })
  try {
    for (const p of options.lazyPlugins ? await options.lazyPlugins(raw) : []) registry.register(p)
  } catch (e) {
    const err = e as { code?: string; message: string; details?: { path?: unknown; plugin?: unknown } }
    issues.push({
      code: (err.code ?? ErrorCodes.PLUGIN_LOAD_FAILED) as MoeIssue['code'],
      path: String(err.details?.path ?? '/'),
      message: err.message,
      ...(typeof err.details?.plugin === 'string' ? { plugin: err.details.plugin } : {}),
    })
  }
  // A package that failed to load is also an unknown plugin for checkConfig: report it once.
  const failed = new Set(issues.map((i) => i.path))
  const checked = checkConfig(raw, registry)
  issues.push(...checked.issues.filter((i) => !(i.code === ErrorCodes.PLUGIN_UNKNOWN && failed.has(i.path))))
  if (checked.issues.length === 0 && checked.config) {
    for (const check of options.checks ?? []) {
      try {
        check(checked.config, source)
      } catch (e) {
        if (!isMoeError(e)) throw e
        issues.push({ code: e.code, path: String(e.details.path ?? '/'), message: e.message })
      }
    }
  }
  return issues
}

/** A file's config completed from the defaults. */
function fill(file: MoeConfig, o: ConfigSourceOptions): MoeConfig {
  if (o.fillDefaults) return o.fillDefaults(file)
  return o.defaults && file && typeof file === 'object' && !Array.isArray(file) ? { ...o.defaults, ...file } : file
}

/** A parsed config must be a JSON object (not null, an array or a number). */
function configObject(value: unknown, source: string): MoeConfig {
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    throw new MoeError(ErrorCodes.CONFIG_INVALID, `${source} must hold a JSON object (a moe-route config), not ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`, {
      path: '/',
      file: source,
    })
  }
  return value as MoeConfig
}

/** `weights.file` is relative to the config's folder. */
function filesFrom(raw: MoeConfig, dir: string): MoeConfig {
  const file = raw.weights && typeof raw.weights === 'object' ? raw.weights.file : undefined
  return typeof file === 'string' && file.length > 0 ? { ...raw, weights: { ...raw.weights, file: resolve(dir, file) } } : raw
}

/**
 * The folder local plugin files must lie in: the nearest folder at or above the config's that
 * holds a package.json, else the config's folder itself.
 */
export function projectRoot(configDir: string): string {
  for (let d = resolve(configDir); ; d = dirname(d)) {
    if (existsSync(join(d, 'package.json'))) return d
    if (dirname(d) === d) return resolve(configDir)
  }
}
