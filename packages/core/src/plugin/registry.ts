/**
 * The plugin registry: checks plugins when they are registered (Fastify-style core range,
 * ESLint-style schema and defaults) and creates instances with validated options.
 */
// semver by function: a bundle takes these two modules, not all of semver
import satisfies from 'semver/functions/satisfies.js'
import validRange from 'semver/ranges/valid.js'
import { ErrorCodes, MoeError, isMoeError, type MoeIssue } from '../errors.js'
import { ajvIssues, compileSchema, formatIssues, type AjvLike } from '../schema/ajv.js'
import { CORE_VERSION } from '../version.js'
import { isPlugin } from './define.js'
import type { Plugin, PluginContext, PluginInstances, PluginKind } from './types.js'

const KINDS: readonly PluginKind[] = ['router', 'policy', 'dispatcher', 'store', 'placement', 'backend']

/** A registered plugin as `moe-route plugins` lists it. */
export interface RegisteredPlugin {
  readonly kind: PluginKind
  readonly name: string
  readonly package: string
  readonly version: string
  readonly core: string
  readonly description?: string
  /** Where it came from: `built-in`, or the specifier it was loaded from. */
  readonly source: string
}

/** Options of a registry. */
export interface RegistryOptions {
  /**
   * Ajv instance to validate options with (default: core's engine, the shared Ajv in Node and
   * the eval-free interpreter in the browser build).
   */
  readonly ajv?: AjvLike
  /** Core version to check plugin ranges against (defaults to this core's version). */
  readonly coreVersion?: string
}

/** Plugins by kind and name. One registry per embedding (the container holds one). */
export class PluginRegistry {
  readonly #ajv: AjvLike | undefined
  readonly #coreVersion: string
  readonly #plugins = new Map<string, { plugin: Plugin; source: string }>()

  constructor(options: RegistryOptions = {}) {
    this.#ajv = options.ajv
    this.#coreVersion = options.coreVersion ?? CORE_VERSION
  }

  /**
   * Registers a plugin after checking its shape, its core range and that its default
   * options pass its own schema. Registering the same object twice is a no-op; another
   * plugin of the same kind and name is MOE_ROUTE_ERR_PLUGIN_DUPLICATE.
   */
  register(plugin: unknown, source = 'built-in'): this {
    const p = checkPluginShape(plugin, source)
    const { meta } = p
    if (!validRange(meta.core)) {
      throw new MoeError(ErrorCodes.PLUGIN_INVALID, `plugin ${meta.name}: meta.core '${meta.core}' is not a semver range`, { plugin: meta.name })
    }
    if (!satisfies(this.#coreVersion, meta.core, { includePrerelease: true })) {
      throw new MoeError(
        ErrorCodes.PLUGIN_VERSION_MISMATCH,
        `plugin ${meta.name} (${meta.package}@${meta.version}) supports @moe-route/core ${meta.core}, but this is ${this.#coreVersion}`,
        { plugin: meta.name, expected: meta.core, actual: this.#coreVersion },
      )
    }
    let validate
    try {
      validate = compileSchema(meta.schema, this.#ajv)
    } catch (cause) {
      throw new MoeError(ErrorCodes.PLUGIN_INVALID, `plugin ${meta.name}: its options schema does not compile: ${(cause as Error).message}`, { plugin: meta.name }, { cause })
    }
    if (!validate(structuredClone(meta.defaultOptions ?? {}))) {
      const issues = ajvIssues(validate.errors, '/defaultOptions', ErrorCodes.PLUGIN_INVALID, meta.name)
      throw new MoeError(ErrorCodes.PLUGIN_INVALID, `plugin ${meta.name}: its default options fail its own schema:\n${formatIssues(issues)}`, { plugin: meta.name, issues })
    }
    const key = `${p.kind}:${meta.name}`
    const existing = this.#plugins.get(key)
    if (existing && existing.plugin !== p) {
      if (existing.plugin.meta.package === meta.package && existing.plugin.meta.version === meta.version) return this
      throw new MoeError(
        ErrorCodes.PLUGIN_DUPLICATE,
        `a ${p.kind} plugin named '${meta.name}' is already registered (from ${existing.plugin.meta.package}); cannot also register it from ${meta.package}`,
        { plugin: meta.name },
      )
    }
    this.#plugins.set(key, { plugin: p, source })
    return this
  }

  /** True if a plugin of this kind is registered under the name, npm package or the reference it was loaded from. */
  has(kind: PluginKind, ref: string): boolean {
    return this.#find(kind, ref) !== undefined
  }

  /** The plugin of this kind registered under a name or npm package, or MOE_ROUTE_ERR_PLUGIN_UNKNOWN. */
  get<K extends PluginKind>(kind: K, ref: string, path?: string): Plugin<K> {
    const found = this.#find(kind, ref)
    if (!found) {
      const names = this.list(kind).map((p) => p.name)
      throw new MoeError(
        ErrorCodes.PLUGIN_UNKNOWN,
        `unknown ${kind} plugin '${ref}'${path ? ` at ${path}` : ''}; registered: ${names.join(', ') || '(none)'}`,
        { plugin: ref, ...(path ? { path } : {}), kind },
      )
    }
    return found as Plugin<K>
  }

  /** Every registered plugin (of one kind, if given), sorted by kind then name. */
  list(kind?: PluginKind): RegisteredPlugin[] {
    const out: RegisteredPlugin[] = []
    for (const { plugin, source } of this.#plugins.values()) {
      if (kind && plugin.kind !== kind) continue
      const { name, package: pkg, version, core, description } = plugin.meta
      out.push({ kind: plugin.kind, name, package: pkg, version, core, source, ...(description ? { description } : {}) })
    }
    return out.sort((a, b) => KINDS.indexOf(a.kind) - KINDS.indexOf(b.kind) || a.name.localeCompare(b.name))
  }

  /**
   * Merges the plugin's defaults under the user's options and validates the result.
   * Returns the issues instead of throwing (for config validation that collects them all).
   */
  checkOptions(plugin: Plugin, userOptions: unknown, path: string): { options: unknown; issues: MoeIssue[] } {
    if (userOptions !== undefined && (typeof userOptions !== 'object' || userOptions === null || Array.isArray(userOptions))) {
      return {
        options: undefined,
        issues: [{ code: ErrorCodes.PLUGIN_OPTIONS_INVALID, path, message: 'must be an object', plugin: plugin.meta.name }],
      }
    }
    const options = { ...structuredClone(plugin.meta.defaultOptions ?? {}), ...(userOptions as object) }
    const validate = compileSchema(plugin.meta.schema, this.#ajv)
    if (validate(options)) return { options, issues: [] }
    return { options, issues: ajvIssues(validate.errors, path, ErrorCodes.PLUGIN_OPTIONS_INVALID, plugin.meta.name) }
  }

  /** Validated options, or MOE_ROUTE_ERR_PLUGIN_OPTIONS_INVALID naming the plugin and each field. */
  resolveOptions(plugin: Plugin, userOptions: unknown, path = '/options'): unknown {
    const { options, issues } = this.checkOptions(plugin, userOptions, path)
    if (issues.length > 0) {
      throw new MoeError(
        ErrorCodes.PLUGIN_OPTIONS_INVALID,
        `invalid options for ${plugin.kind} plugin ${plugin.meta.name}:\n${formatIssues(issues)}`,
        { plugin: plugin.meta.name, path: issues[0].path, issues },
      )
    }
    return options
  }

  /** Looks a plugin up, validates its options and calls its factory (errors name the plugin). */
  create<K extends PluginKind>(kind: K, ref: string, userOptions: unknown, context: PluginContext, path = `/${kind}`): PluginInstances[K] {
    const plugin = this.get(kind, ref, `${path}/use`)
    const options = this.resolveOptions(plugin, userOptions, `${path}/options`)
    return callPlugin(plugin.meta.name, 'create', () => plugin.create(options, context))
  }

  #find(kind: PluginKind, ref: string): Plugin | undefined {
    const byName = this.#plugins.get(`${kind}:${ref}`)
    if (byName) return byName.plugin
    for (const { plugin } of this.#plugins.values()) {
      if (plugin.kind === kind && plugin.meta.package === ref) return plugin
    }
    // a local file plugin is named by its path (`./my-policy.js`), the reference it was loaded from
    for (const { plugin, source } of this.#plugins.values()) {
      if (plugin.kind === kind && source === ref && source !== 'built-in') return plugin
    }
    return undefined
  }
}

/** Checks that a value is a well-formed plugin; MOE_ROUTE_ERR_PLUGIN_INVALID otherwise. */
export function checkPluginShape(value: unknown, source = 'value'): Plugin {
  const fail = (why: string): never => {
    throw new MoeError(ErrorCodes.PLUGIN_INVALID, `${source} is not a moe-route plugin: ${why}`, { plugin: source })
  }
  if (typeof value !== 'object' || value === null) fail('not an object')
  const p = value as Partial<Plugin>
  if (!isPlugin(value)) fail('it was not made by definePolicy/defineRouter/defineDispatcher/defineStore/definePlacement/defineBackend')
  if (!p.kind || !KINDS.includes(p.kind)) fail(`unknown kind '${String(p.kind)}'`)
  const meta = p.meta
  if (!meta || typeof meta !== 'object') fail('missing meta')
  for (const field of ['name', 'package', 'version', 'core'] as const) {
    if (typeof meta![field] !== 'string' || meta![field].length === 0) fail(`meta.${field} must be a non-empty string`)
  }
  if (typeof meta!.schema !== 'object' || meta!.schema === null) fail('meta.schema must be a JSON Schema object')
  if (typeof p.create !== 'function') fail('create must be a function')
  return value as Plugin
}

/**
 * Runs a plugin hook; any error becomes (or is annotated as) a MoeError naming the plugin
 * and hook, so a failure inside a stream says which plugin broke (Rollup's throwPluginError).
 */
export function callPlugin<T>(plugin: string, hook: string, fn: () => T): T {
  try {
    return fn()
  } catch (cause) {
    throw pluginError(plugin, hook, cause)
  }
}

/** The error {@link callPlugin} throws for a failing hook. */
export function pluginError(plugin: string, hook: string, cause: unknown): MoeError {
  if (isMoeError(cause)) {
    if (cause.details.plugin) return cause
    return new MoeError(cause.code, `${plugin}.${hook}: ${cause.message}`, { ...cause.details, plugin, hook }, { cause })
  }
  const message = cause instanceof Error ? cause.message : String(cause)
  return new MoeError(ErrorCodes.PLUGIN_FAILED, `plugin ${plugin} failed in ${hook}: ${message}`, { plugin, hook }, { cause })
}
