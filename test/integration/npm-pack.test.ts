/**
 * The community-plugin path end to end, as a user gets it from npm: `npm pack` the example
 * policy package and the workspace packages the CLI needs, install the tarballs into an
 * empty project offline (external dependencies come from npm's cache), and run
 * `moe-route run` there with a config that names the policy package.
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join, relative, sep } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { ROOT } from './helpers.js'

interface Pkg {
  name: string
  version: string
  dependencies?: Record<string, string>
  peerDependencies?: Record<string, string>
}
const readPkg = (dir: string): Pkg => JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))

/** Workspace packages by npm name (the root's workspace globs are all `<dir>/*` or plain dirs). */
function workspaces(): Map<string, string> {
  const globs: string[] = readPkgRaw(ROOT).workspaces
  const map = new Map<string, string>()
  for (const g of globs) {
    const dirs = g.endsWith('/*') ? readdirSync(join(ROOT, g.slice(0, -2)), { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => join(ROOT, g.slice(0, -2), d.name)) : [join(ROOT, g)]
    for (const d of dirs) if (existsSync(join(d, 'package.json'))) map.set(readPkg(d).name, d)
  }
  return map
}
function readPkgRaw(dir: string) {
  return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
}

/** The workspace packages `roots` need at run time (dependencies and peers, transitively). */
function closure(roots: readonly string[], ws: Map<string, string>): string[] {
  const seen = new Set<string>()
  const visit = (name: string) => {
    if (seen.has(name) || !ws.has(name)) return
    seen.add(name)
    const p = readPkg(ws.get(name)!)
    for (const dep of Object.keys({ ...p.dependencies, ...p.peerDependencies })) visit(dep)
  }
  roots.forEach(visit)
  return [...seen]
}

interface Packed {
  name: string
  version: string
  filename: string
  integrity: string
  files: { path: string }[]
}
interface LockEntry {
  version?: string
  resolved?: string
  integrity?: string
  link?: boolean
  dependencies?: Record<string, string>
  optionalDependencies?: Record<string, string>
  peerDependencies?: Record<string, string>
  peerDependenciesMeta?: Record<string, { optional?: boolean }>
  [key: string]: unknown
}

/**
 * The lockfile of the user project: the tarballs as `file:` dependencies, plus every external
 * package they need, copied from the monorepo's lockfile (same version and integrity) with a
 * registry `resolved` URL, and without the monorepo's dev/peer flags.
 */
function userLockfile(packed: readonly Packed[], ws: Map<string, string>) {
  const rootLock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as { packages: Record<string, LockEntry> }
  const packages: Record<string, LockEntry> = {
    '': { name: 'moe-route-user-project', version: '1.0.0', dependencies: Object.fromEntries(packed.map((p) => [p.name, `file:tgz/${p.filename}`])) },
  }
  // Each queued package carries its chain of (path in the monorepo lock, path in the user
  // lock) from itself up to the top, to find dependencies the way Node does: nested first.
  type Chain = { src: string; dst: string }[]
  const queue: [Chain, LockEntry][] = []
  for (const p of packed) {
    const m = readPkgRaw(ws.get(p.name)!)
    const entry: LockEntry = { version: p.version, resolved: `file:tgz/${p.filename}`, integrity: p.integrity }
    for (const k of ['dependencies', 'optionalDependencies', 'peerDependencies', 'peerDependenciesMeta', 'bin', 'engines', 'license'] as const) if (m[k]) entry[k] = m[k]
    packages[`node_modules/${p.name}`] = entry
    queue.push([[{ src: relative(ROOT, ws.get(p.name)!).split(sep).join('/'), dst: `node_modules/${p.name}` }], entry])
  }
  const registry = (name: string, version: string) => `https://registry.npmjs.org/${name}/-/${name.split('/').pop()}-${version}.tgz`
  while (queue.length > 0) {
    const [chain, entry] = queue.shift()!
    const wanted = { ...entry.dependencies, ...entry.optionalDependencies }
    for (const [name, range] of Object.entries(entry.peerDependencies ?? {})) if (!entry.peerDependenciesMeta?.[name]?.optional) wanted[name] = range
    for (const name of Object.keys(wanted)) {
      let found: Chain | undefined
      for (let i = 0; i < chain.length && !found; i++) {
        const src = `${chain[i].src}/node_modules/${name}`
        if (rootLock.packages[src] && !rootLock.packages[src].link) found = [{ src, dst: `${chain[i].dst}/node_modules/${name}` }, ...chain.slice(i)]
      }
      const top = `node_modules/${name}`
      if (!found && (packages[top] || (rootLock.packages[top] && !rootLock.packages[top].link))) found = [{ src: top, dst: top }]
      if (!found) {
        if (entry.optionalDependencies?.[name]) delete entry.optionalDependencies[name] // a platform package the lockfile never had
        continue
      }
      const { src, dst } = found[0]
      if (packages[dst]) continue
      const { dev: _d, devOptional: _o, peer: _p, ...copy } = rootLock.packages[src] as LockEntry & { dev?: boolean; devOptional?: boolean; peer?: boolean }
      copy.resolved ??= registry(name, copy.version!)
      packages[dst] = copy
      queue.push([found, copy])
    }
  }
  return { name: 'moe-route-user-project', version: '1.0.0', lockfileVersion: 3, requires: true, packages }
}

const env = { ...process.env, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false', NODE_OPTIONS: '' }
let dir: string
let tarballs: string[] = []

beforeAll(() => {
  const ws = workspaces()
  const names = closure(['@moe-route/cli', 'moe-route-policy-entropy-drop'], ws)
  for (const n of names) {
    if (!existsSync(join(ws.get(n)!, 'dist'))) throw new Error(`${n} has no dist/: run the build first (npm test does)`)
  }
  dir = mkdtempSync(join(tmpdir(), 'moe-route-pack-'))
  mkdirSync(join(dir, 'tgz'))
  const packed = JSON.parse(
    execFileSync('npm', ['pack', ...names.map((n) => ws.get(n)!), '--pack-destination', join(dir, 'tgz'), '--json', '--ignore-scripts'], { cwd: ROOT, env, encoding: 'utf8', maxBuffer: 64 << 20 }),
  ) as Packed[]
  tarballs = packed.map((p) => join(dir, 'tgz', p.filename))
  const example = packed.find((p) => p.name === 'moe-route-policy-entropy-drop')!
  // What a user downloads: the build and the README, no sources or tests.
  expect(example.files.map((f) => f.path).sort()).toEqual(expect.arrayContaining(['README.md', 'dist/index.cjs', 'dist/index.d.ts', 'dist/index.js', 'package.json']))
  expect(example.files.some((f) => f.path.includes('test') || f.path.startsWith('src/'))).toBe(false)
  // A lockfile pinning every external dependency to the monorepo's locked version, resolved
  // URL and integrity, so `npm ci --offline` takes each tarball from npm's cache by integrity:
  // no registry metadata needed, and no newer release can slip in between CI runs.
  const deps = Object.fromEntries(packed.map((p) => [p.name, `file:tgz/${p.filename}`]))
  writeFileSync(join(dir, 'package.json'), JSON.stringify({ name: 'moe-route-user-project', version: '1.0.0', private: true, type: 'module', dependencies: deps }, null, 2))
  writeFileSync(join(dir, 'package-lock.json'), JSON.stringify(userLockfile(packed, ws), null, 2))
  const install = spawnSync('npm', ['ci', '--offline', '--no-audit', '--no-fund', '--ignore-scripts', '--loglevel=error'], { cwd: dir, env, encoding: 'utf8' })
  if (install.status !== 0) throw new Error(`npm ci --offline of the tarballs failed:\n${install.stderr}`)
}, 120_000)
afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true })
})

const moeRoute = (args: string[]) =>
  spawnSync(process.execPath, [join(dir, 'node_modules/@moe-route/cli/dist/bin.js'), ...args], { cwd: dir, env, encoding: 'utf8', timeout: 60_000 })

describe('a policy package installed from its npm tarball', () => {
  it('installs with @moe-route/core as its peer, one copy in the project', () => {
    expect(tarballs.length).toBeGreaterThan(2)
    const installed = readPkg(join(dir, 'node_modules/moe-route-policy-entropy-drop'))
    expect(installed.version).toBe('1.0.0')
    expect(existsSync(join(dir, 'node_modules/moe-route-policy-entropy-drop/node_modules/@moe-route/core'))).toBe(false)
    expect(readPkg(join(dir, 'node_modules/@moe-route/core')).version).toBe('0.1.0')
  })

  it('moe-route run loads it by package name from the config and routes with it', () => {
    writeFileSync(
      join(dir, 'moe-route.config.json'),
      JSON.stringify({
        model: { name: 'pack-test', experts: 8, topK: 2, hidden: 32, intermediate: 64 },
        policies: [{ use: 'moe-route-policy-entropy-drop', options: { capacityFactor: 0.75 } }],
        workload: { source: 'uniform:E=8:k=2', tokensPerBatch: 128, batches: 3, seed: 5 },
      }),
    )
    const r = moeRoute(['run', '-c', 'moe-route.config.json', '--json', '--no-progress'])
    expect(r.stderr).toBe('')
    expect(r.status).toBe(0)
    const report = JSON.parse(r.stdout)
    expect(report.policies).toEqual([{ use: 'moe-route-policy-entropy-drop', options: { capacityFactor: 0.75 } }])
    expect(report.batches).toBe(3)
    expect(report.droppedPairs).toBeGreaterThan(0)
    expect(Math.max(...report.load.after)).toBeLessThanOrEqual(3 * 48) // capacity ⌈0.75·2·128/8⌉ = 24 per batch
    expect(report.output.l2Norm).toBeGreaterThan(0)
  })

  it('moe-route plugins lists it as installed and compatible, and as loaded with -c', () => {
    const r = moeRoute(['plugins', '-c', 'moe-route.config.json', '--json'])
    expect(r.status).toBe(0)
    const l = JSON.parse(r.stdout)
    expect(l.plugins.find((p: { name: string }) => p.name === 'entropy-drop')).toMatchObject({ package: 'moe-route-policy-entropy-drop', version: '1.0.0', status: 'loaded' })
  })

  it('a wrong option fails with the plugin named, from the installed CLI', () => {
    writeFileSync(join(dir, 'bad.json'), JSON.stringify({ model: { experts: 8, topK: 2, hidden: 8, intermediate: 8 }, policies: [{ use: 'moe-route-policy-entropy-drop', options: { rounding: 'up' } }] }))
    const r = moeRoute(['validate', '-c', 'bad.json'])
    expect(r.status).toBe(1)
    expect(r.stderr).toContain('MOE_ROUTE_ERR_PLUGIN_OPTIONS_INVALID: bad.json: /policies/0/options/rounding: must be one of "ceil", "floor", "round"')
  })
})
