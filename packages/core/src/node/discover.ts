/**
 * Finding plugin packages installed in node_modules without importing them (Node only):
 * what `moe-route plugins` lists as installed but not loaded, with its compatibility.
 */
import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
// semver by function: a bundle takes these two modules, not all of semver
import satisfies from 'semver/functions/satisfies.js'
import validRange from 'semver/ranges/valid.js'
import { isMoeError } from '../errors.js'
import type { PluginKind } from '../plugin/types.js'
import { CORE_VERSION } from '../version.js'
import { readManifest } from './manifest.js'

/** A plugin package found in node_modules. */
export interface InstalledPluginPackage {
  /** npm name, e.g. `moe-route-policy-entropy-drop` or `@acme/moe-route-policy-x`. */
  readonly name: string
  readonly version: string
  /** Folder of the package. */
  readonly dir: string
  readonly description?: string
  /** Its `peerDependencies['@moe-route/core']` (or dependencies), if it declares one. */
  readonly coreRange?: string
  /** Whether `coreRange` includes the given core version (true when it declares none). */
  readonly compatible: boolean
  /** The plugins its package.json `moe-route` manifest declares (absent when the manifest is missing or invalid). */
  readonly declares?: readonly { readonly kind: PluginKind; readonly name: string }[]
  /** Why its manifest cannot be used (`MOE_ROUTE_ERR_PLUGIN_MANIFEST_…: …`); such a package cannot be loaded. */
  readonly manifestError?: string
}

/** Options of {@link findInstalledPlugins}. */
export interface FindInstalledPluginsOptions {
  /** Core version to check ranges against (default: this core's). */
  readonly coreVersion?: string
}

const NAME = /^(?:@[^/]+\/)?moe-route-(?:policy|router|dispatcher|store|placement|backend|plugin)-[a-z0-9._-]+$/
const KEYWORDS = ['moe-plugin', 'moe-policy', 'moe-route-plugin']

/**
 * Lists packages in every `node_modules` from `from` up to the root whose name follows the
 * community convention (`moe-route-policy-*`, `@scope/moe-route-policy-*`, likewise for
 * routers, dispatchers, stores, placements and backends) or whose keywords include
 * `moe-plugin`/`moe-policy`, with what their `moe-route` manifest declares. Nearest copy wins;
 * nothing is imported.
 * @example
 * for (const p of findInstalledPlugins(process.cwd())) console.log(p.name, p.compatible)
 */
export function findInstalledPlugins(from: string, options: FindInstalledPluginsOptions = {}): InstalledPluginPackage[] {
  const coreVersion = options.coreVersion ?? CORE_VERSION
  const found = new Map<string, InstalledPluginPackage>()
  for (let dir = resolve(from); ; dir = dirname(dir)) {
    const nm = join(dir, 'node_modules')
    if (existsSync(nm)) {
      for (const pkgDir of packageDirs(nm)) {
        const pkg = readPackage(pkgDir)
        if (!pkg || found.has(pkg.name)) continue
        const keywords = Array.isArray(pkg.keywords) ? pkg.keywords : []
        if (pkg.name.startsWith('@moe-route/') || !(NAME.test(pkg.name) || keywords.some((k) => KEYWORDS.includes(k)))) continue
        let declares: { kind: PluginKind; name: string }[] | undefined
        let manifestError: string | undefined
        let manifestCore: string | undefined
        try {
          const m = readManifest(pkg, join(pkgDir, 'package.json'))
          declares = m.plugins.map((p) => ({ kind: p.kind, name: p.name }))
          manifestCore = m.core
        } catch (e) {
          manifestError = isMoeError(e) ? `${e.code}: ${e.message}` : String(e)
        }
        const coreRange = manifestCore ?? pkg.peerDependencies?.['@moe-route/core'] ?? pkg.dependencies?.['@moe-route/core']
        const compatible = coreRange === undefined || (validRange(coreRange) !== null && satisfies(coreVersion, coreRange, { includePrerelease: true }))
        found.set(pkg.name, {
          name: pkg.name,
          version: pkg.version ?? '0.0.0',
          dir: pkgDir,
          ...(pkg.description ? { description: pkg.description } : {}),
          ...(coreRange ? { coreRange } : {}),
          compatible,
          ...(declares ? { declares } : {}),
          ...(manifestError ? { manifestError } : {}),
        })
      }
    }
    if (dirname(dir) === dir) break
  }
  return [...found.values()].sort((a, b) => a.name.localeCompare(b.name))
}

interface PackageJson {
  name: string
  version?: string
  description?: string
  keywords?: string[]
  peerDependencies?: Record<string, string>
  dependencies?: Record<string, string>
}

function packageDirs(nm: string): string[] {
  const out: string[] = []
  let entries: string[]
  try {
    entries = readdirSync(nm)
  } catch {
    return out
  }
  for (const e of entries) {
    if (e.startsWith('.')) continue
    if (e.startsWith('@')) {
      try {
        for (const s of readdirSync(join(nm, e))) out.push(join(nm, e, s))
      } catch {
        /* not a folder */
      }
    } else out.push(join(nm, e))
  }
  return out
}

function readPackage(dir: string): PackageJson | undefined {
  try {
    if (statSync(join(dir, 'package.json')).size > 1 << 20) return undefined
    const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as PackageJson
    return typeof pkg.name === 'string' ? pkg : undefined
  } catch {
    return undefined
  }
}
