/**
 * Where a plugin reference may point (Node only). A package name is looked up only in the
 * `node_modules` folders Node itself searches from the config's folder
 * (`require.resolve.paths`); its entry is the file its package.json `exports` (import
 * conditions) or `main` names, and that file — symlinks resolved — must lie inside the package.
 * Anything else (`pkg/../../evil.js`, a subpath, a URL) is refused. A local file needs an
 * explicit opt-in and must lie inside the project. Nothing here imports or runs anything.
 */
import { existsSync, readFileSync, realpathSync, statSync } from 'node:fs'
import { createRequire } from 'node:module'
import { dirname, isAbsolute, join, relative, resolve } from 'node:path'
import { ErrorCodes, MoeError } from '../errors.js'
import { MANIFEST_FIELD, readManifest, type PluginManifest } from './manifest.js'

/** A plugin package found and checked, not yet imported. */
export interface PluginPackage {
  /** The reference as the config wrote it. */
  readonly spec: string
  /** npm name (package.json `name`; for a local file without one, the reference). */
  readonly name: string
  readonly version: string
  /** Real path of the package folder. */
  readonly dir: string
  /** Real path of the module to import (inside `dir`). */
  readonly entry: string
  readonly manifest: PluginManifest
  /** True for a local file plugin (it may provide only some of its manifest's plugins). */
  readonly local: boolean
}

/** Options of {@link resolvePluginPackage}. */
export interface ResolvePluginOptions {
  /** Folder to resolve from (the config's folder). */
  readonly from: string
  /** Allow local file plugins (`./my-policy.js`): off unless the user asks (CLI: --allow-local-plugins). */
  readonly allowLocal?: boolean
  /** Folder local plugins must lie in (default `from`). */
  readonly projectRoot?: string
}

/** Largest package.json read (1 MiB). */
const MAX_PACKAGE_JSON = 1 << 20

/** An npm package name (validate-npm-package-name's rules for new packages; at most 214 characters). */
export function isPackageName(spec: string): boolean {
  return spec.length <= 214 && /^(?:@[a-z0-9-*~][a-z0-9-*._~]*\/)?[a-z0-9-~][a-z0-9-._~]*$/.test(spec) && spec !== 'node_modules'
}

/** True when a reference is a file path (`./x.js`, `../x`, `/abs/x.js`, `C:\x.js`). */
export function isLocalSpec(spec: string): boolean {
  return spec.startsWith('./') || spec.startsWith('../') || spec.startsWith('.\\') || spec.startsWith('..\\') || isAbsolute(spec) || spec === '.' || spec === '..'
}

/**
 * Finds a plugin package (or, with the opt-in, a local file) and reads its manifest.
 * @throws MOE_ROUTE_ERR_PLUGIN_PATH_REFUSED for a reference that is neither a package name nor
 * an allowed local file, or whose module leaves its package or the project;
 * MOE_ROUTE_ERR_PLUGIN_UNKNOWN when the package is not installed; the manifest's errors.
 */
export function resolvePluginPackage(spec: string, options: ResolvePluginOptions): PluginPackage {
  const refuse = (why: string): never => {
    throw new MoeError(ErrorCodes.PLUGIN_PATH_REFUSED, `plugin reference ${JSON.stringify(spec)} refused: ${why}`, { plugin: spec })
  }
  if (typeof spec !== 'string' || spec.length === 0) refuse('it is empty')
  if (isLocalSpec(spec)) return resolveLocal(spec, options, refuse)
  if (!isPackageName(spec)) {
    refuse('it is not an npm package name (a plugin is named by its package, like moe-route-policy-x or @scope/moe-route-policy-x; subpaths, URLs and paths are not allowed)')
  }
  const from = resolve(options.from)
  const lookup = createRequire(join(from, '__moe_route_resolve__.js')).resolve.paths(spec) ?? []
  for (const nm of lookup) {
    const dir = join(nm, spec)
    if (!existsSync(join(dir, 'package.json'))) continue
    const realDir = realpathSync(dir)
    const pkg = readPackageJson(join(realDir, 'package.json'))
    const entry = packageEntry(realDir, pkg, refuse)
    return { spec, name: typeof pkg.name === 'string' ? pkg.name : spec, version: versionOf(pkg), dir: realDir, entry, manifest: readManifest(pkg, join(realDir, 'package.json')), local: false }
  }
  throw new MoeError(
    ErrorCodes.PLUGIN_UNKNOWN,
    `plugin package ${spec} is not installed (looked in node_modules from ${from} upwards); install it with: npm install ${spec}`,
    { plugin: spec },
  )
}

function resolveLocal(spec: string, options: ResolvePluginOptions, refuse: (why: string) => never): PluginPackage {
  if (!options.allowLocal) refuse('local file plugins run code from the project folder and need an explicit opt-in (moe-route --allow-local-plugins, or allowLocal in the API)')
  const abs = resolve(options.from, spec)
  const rootPath = resolve(options.projectRoot ?? options.from)
  if (!inside(rootPath, abs)) refuse(`${abs} lies outside the project (${rootPath})`)
  if (!existsSync(abs)) throw new MoeError(ErrorCodes.PLUGIN_LOAD_FAILED, `plugin file ${abs} does not exist`, { plugin: spec, file: abs })
  const real = realpathSync(abs)
  const root = realpathSync(rootPath)
  // symlinks resolved: a link inside the project to a file outside is outside
  if (!inside(root, real)) refuse(`${real} lies outside the project (${root})`)
  if (statSync(real).isDirectory()) {
    const pkgFile = join(real, 'package.json')
    if (!existsSync(pkgFile)) refuse(`${real} is a folder without a package.json`)
    const pkg = readPackageJson(pkgFile)
    const entry = packageEntry(real, pkg, refuse)
    return { spec, name: typeof pkg.name === 'string' ? pkg.name : spec, version: versionOf(pkg), dir: real, entry, manifest: readManifest(pkg, pkgFile), local: true }
  }
  // a file: its manifest is the nearest package.json with a moe-route field, within the project
  for (let dir = dirname(real); inside(root, dir); dir = dirname(dir)) {
    const pkgFile = join(dir, 'package.json')
    if (existsSync(pkgFile)) {
      const pkg = readPackageJson(pkgFile)
      if (pkg[MANIFEST_FIELD] !== undefined) {
        return { spec, name: typeof pkg.name === 'string' ? pkg.name : spec, version: versionOf(pkg), dir, entry: real, manifest: readManifest(pkg, pkgFile), local: true }
      }
    }
    if (dir === root || dirname(dir) === dir) break
  }
  throw new MoeError(
    ErrorCodes.PLUGIN_MANIFEST_MISSING,
    `local plugin ${spec}: no package.json with a "${MANIFEST_FIELD}" field between ${real} and the project root ${root} declares its plugins`,
    { plugin: spec, file: real },
  )
}

/** True when `path` is `root` or below it. */
function inside(root: string, path: string): boolean {
  const rel = relative(root, path)
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel))
}

function versionOf(pkg: Record<string, unknown>): string {
  return typeof pkg.version === 'string' ? pkg.version : '0.0.0'
}

function readPackageJson(file: string): Record<string, unknown> {
  const st = statSync(file)
  if (!st.isFile()) throw new MoeError(ErrorCodes.PLUGIN_MANIFEST_INVALID, `${file} is not a regular file`, { file })
  const size = st.size
  if (size > MAX_PACKAGE_JSON) {
    throw new MoeError(ErrorCodes.PLUGIN_MANIFEST_INVALID, `${file} is ${size} bytes, more than the ${MAX_PACKAGE_JSON} a package.json may have`, { file })
  }
  let pkg: unknown
  try {
    pkg = JSON.parse(readFileSync(file, 'utf8'))
  } catch (cause) {
    throw new MoeError(ErrorCodes.PLUGIN_MANIFEST_INVALID, `${file} is not valid JSON: ${(cause as Error).message}`, { file }, { cause })
  }
  if (!pkg || typeof pkg !== 'object' || Array.isArray(pkg)) throw new MoeError(ErrorCodes.PLUGIN_MANIFEST_INVALID, `${file} is not a JSON object`, { file })
  return pkg as Record<string, unknown>
}

/** ESM import conditions, in the order Node matches them (object key order decides). */
const CONDITIONS = new Set(['node', 'import', 'default'])

/** The target of package.json `exports` for `.` under import conditions (Node's PACKAGE_TARGET_RESOLVE). */
function exportsTarget(v: unknown, depth = 0): string | null | undefined {
  if (depth > 16) return undefined
  if (typeof v === 'string') return v
  if (v === null) return null
  if (Array.isArray(v)) {
    for (const x of v) {
      const r = exportsTarget(x, depth + 1)
      if (typeof r === 'string') return r
    }
    return undefined
  }
  if (typeof v === 'object') {
    for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
      if (!CONDITIONS.has(k)) continue
      const r = exportsTarget(x, depth + 1)
      if (r !== undefined) return r
    }
  }
  return undefined
}

/** The module Node would import for the package's root, checked to lie inside the package. */
function packageEntry(dir: string, pkg: Record<string, unknown>, refuse: (why: string) => never): string {
  let target: string
  if (pkg.exports !== undefined) {
    let root: unknown = pkg.exports
    if (root && typeof root === 'object' && !Array.isArray(root) && Object.keys(root).some((k) => k.startsWith('.'))) root = (root as Record<string, unknown>)['.']
    const t = exportsTarget(root)
    if (typeof t !== 'string') refuse(`package.json "exports" of ${dir} gives no entry for import`)
    if (!(t as string).startsWith('./')) refuse(`package.json "exports" target ${JSON.stringify(t)} does not start with "./" (Node refuses such targets)`)
    target = t as string
  } else {
    target = typeof pkg.main === 'string' && pkg.main.length > 0 ? pkg.main : 'index.js'
  }
  let abs = resolve(dir, target)
  if (!inside(dir, abs)) refuse(`its module ${JSON.stringify(target)} points to ${abs}, outside the package folder ${dir}`)
  if (!existsSync(abs) && existsSync(`${abs}.js`)) abs = `${abs}.js`
  if (existsSync(abs) && statSync(abs).isDirectory()) abs = join(abs, 'index.js')
  if (!existsSync(abs)) {
    throw new MoeError(ErrorCodes.PLUGIN_LOAD_FAILED, `the entry ${JSON.stringify(target)} of ${dir} does not exist`, { file: abs })
  }
  const real = realpathSync(abs)
  if (!inside(dir, real)) refuse(`its module ${JSON.stringify(target)} resolves to ${real}, outside the package folder ${dir}`)
  return real
}
