/**
 * Loading plugins by npm package name (Node only: `@moe-route/core/node`). The library API
 * always takes plugin objects; this serves config files and the CLI.
 */
import { existsSync, readFileSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, isAbsolute, join, resolve } from 'node:path'
import { pathToFileURL } from 'node:url'
import { ErrorCodes, MoeError, isMoeError } from '../errors.js'
import { isPlugin } from '../plugin/define.js'
import type { PluginRegistry, RegisteredPlugin } from '../plugin/registry.js'
import type { Plugin } from '../plugin/types.js'

/** Options of {@link loadPlugins}. */
export interface LoadPluginsOptions {
  /** Registry to register the plugins into. */
  readonly registry: PluginRegistry
  /** Folder to resolve package names from (default: process.cwd()). */
  readonly from?: string
}

/**
 * Imports each package (or file path), finds the moe-route plugins it exports (default
 * export, an array, or named exports), checks and registers them.
 * @example
 * await loadPlugins(['moe-route-policy-entropy-drop'], { registry })
 */
export async function loadPlugins(specs: readonly string[], options: LoadPluginsOptions): Promise<RegisteredPlugin[]> {
  const from = options.from ?? process.cwd()
  const loaded: RegisteredPlugin[] = []
  for (const spec of specs) {
    const entry = resolveEntry(spec, from)
    let mod: Record<string, unknown>
    try {
      mod = (await import(pathToFileURL(entry).href)) as Record<string, unknown>
    } catch (cause) {
      throw new MoeError(ErrorCodes.PLUGIN_LOAD_FAILED, `importing plugin package ${spec} failed: ${(cause as Error).message}`, { plugin: spec, file: entry }, { cause })
    }
    const plugins = pluginsOf(mod)
    if (plugins.length === 0) {
      throw new MoeError(ErrorCodes.PLUGIN_INVALID, `${spec} exports no moe-route plugin (expected a default export made by definePolicy/defineRouter/...)`, { plugin: spec, file: entry })
    }
    for (const p of plugins) {
      try {
        options.registry.register(p, spec)
      } catch (e) {
        if (isMoeError(e)) throw new MoeError(e.code, `${spec}: ${e.message}`, { ...e.details, plugin: e.details.plugin ?? spec }, { cause: e })
        throw e
      }
      loaded.push(options.registry.list(p.kind).find((r) => r.name === p.meta.name)!)
    }
  }
  return loaded
}

function pluginsOf(mod: Record<string, unknown>): Plugin[] {
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

/** Finds the file Node would import for a package name (or a path) from a folder. */
export function resolveEntry(spec: string, from: string): string {
  if (spec.startsWith('.') || isAbsolute(spec)) {
    const p = resolve(from, spec)
    if (!existsSync(p)) throw new MoeError(ErrorCodes.PLUGIN_LOAD_FAILED, `plugin file ${p} does not exist`, { plugin: spec, file: p })
    const pkgJson = join(p, 'package.json')
    return existsSync(pkgJson) ? entryOfPackage(p, JSON.parse(readFileSync(pkgJson, 'utf8'))) : p
  }
  const [scopeOrName, maybeName, ...sub] = spec.split('/')
  const name = scopeOrName.startsWith('@') ? `${scopeOrName}/${maybeName}` : scopeOrName
  if (sub.length > 0 || (!scopeOrName.startsWith('@') && maybeName)) {
    try {
      return createRequire(join(from, 'noop.js')).resolve(spec)
    } catch {
      /* fall through to the package walk */
    }
  }
  for (let dir = resolve(from); ; dir = dirname(dir)) {
    const pkgDir = join(dir, 'node_modules', name)
    if (existsSync(join(pkgDir, 'package.json'))) return entryOfPackage(pkgDir, JSON.parse(readFileSync(join(pkgDir, 'package.json'), 'utf8')))
    if (dirname(dir) === dir) break
  }
  throw new MoeError(
    ErrorCodes.PLUGIN_UNKNOWN,
    `plugin package ${spec} is not installed (looked in node_modules from ${from} upwards); install it with: npm install ${name}`,
    { plugin: spec },
  )
}

function entryOfPackage(dir: string, pkg: { exports?: unknown; module?: string; main?: string }): string {
  const pick = (v: unknown): string | undefined => {
    if (typeof v === 'string') return v
    if (v && typeof v === 'object') {
      const o = v as Record<string, unknown>
      return pick(o.import) ?? pick(o.node) ?? pick(o.default) ?? pick(o.require)
    }
    return undefined
  }
  const exp = pkg.exports
  const root = exp && typeof exp === 'object' && '.' in (exp as object) ? (exp as Record<string, unknown>)['.'] : exp
  const rel = pick(root) ?? pkg.module ?? pkg.main ?? 'index.js'
  return resolve(dir, rel)
}
