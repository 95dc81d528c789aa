/**
 * Helpers of the integration tests: a throwaway project folder with plugin packages in its
 * node_modules (linked to the workspace's built @moe-route/core, as npm would install them),
 * and the real CLI `main()` with captured stdout/stderr.
 */
import { main, type CliContext } from '@moe-route/cli'
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'

/** The monorepo root. */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url))

/** Output of one CLI invocation. */
export interface CliRun {
  readonly code: number
  readonly out: string
  readonly err: string
}

/** Runs `moe-route <argv>` in-process with `cwd`, capturing what it writes. */
export async function cli(argv: readonly string[], cwd: string): Promise<CliRun> {
  const out: string[] = []
  const err: string[] = []
  const ctx: CliContext = { out: (s) => out.push(s), err: (s) => err.push(s), interactive: false, cwd }
  const code = await main(argv, ctx)
  return { code, out: out.join('\n'), err: err.join('\n') }
}

/**
 * Why the project holds copies rather than links to workspace packages: inside vitest,
 * Node resolves workspace packages with the `@moe-route/source` condition (src/*.ts), which
 * Node itself cannot import. An npm install has no such condition, so the project gets the
 * built dist files under package.json files that lack it, as a tarball install would.
 */
/** A temporary project folder; `dispose()` removes it. */
export interface Project {
  readonly dir: string
  /** Writes a file (JSON for objects) relative to the project. */
  write(path: string, content: string | object): string
  /** Adds `node_modules/<name>` with a package.json and an ESM `index.js`. */
  addPackage(name: string, source: string, pkg?: Record<string, unknown>): void
  /** Installs a built workspace package: its dist/ and package.json, without the source condition. */
  installBuilt(name: string, workspaceDir: string): void
  dispose(): void
}

/** Creates a project whose node_modules holds @moe-route/core (the workspace's built copy). */
export function createProject(): Project {
  if (!existsSync(join(ROOT, 'packages/core/dist/index.js'))) throw new Error('packages/core/dist is missing: run the build first (npm test does)')
  const dir = mkdtempSync(join(tmpdir(), 'moe-route-it-'))
  const write = (path: string, content: string | object) => {
    const file = join(dir, path)
    mkdirSync(dirname(file), { recursive: true })
    writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content, null, 2))
    return file
  }
  // @moe-route/core re-exports the workspace's build, so its own dependencies (ajv, tsyringe, …)
  // resolve from the monorepo's node_modules.
  write('node_modules/@moe-route/core/package.json', { name: '@moe-route/core', version: readPackage(join(ROOT, 'packages/core')).version, type: 'module', exports: { '.': './index.js' } })
  write('node_modules/@moe-route/core/index.js', `export * from ${JSON.stringify(pathToFileURL(join(ROOT, 'packages/core/dist/index.js')).href)}\n`)
  return {
    dir,
    write,
    installBuilt(name, workspaceDir) {
      const pkg = readPackage(workspaceDir)
      if (!existsSync(join(workspaceDir, 'dist'))) throw new Error(`${workspaceDir}/dist is missing: run the build first (npm test does)`)
      cpSync(join(workspaceDir, 'dist'), join(dir, 'node_modules', name, 'dist'), { recursive: true })
      write(`node_modules/${name}/package.json`, JSON.stringify(pkg, (k, v) => (k === '@moe-route/source' ? undefined : v), 2))
    },
    addPackage(name, source, pkg = {}) {
      write(`node_modules/${name}/package.json`, {
        name,
        version: '1.0.0',
        type: 'module',
        exports: { '.': './index.js' },
        keywords: ['moe-plugin', 'moe-policy'],
        peerDependencies: { '@moe-route/core': '^0.1.0' },
        ...pkg,
      })
      write(`node_modules/${name}/index.js`, source)
    },
    dispose: () => rmSync(dir, { recursive: true, force: true }),
  }
}

/** What a fixture policy's package.json `moe-route` manifest declares (matching {@link policySource}). */
export function policyManifest(name: string, o: { core?: string } = {}): Record<string, unknown> {
  return {
    core: o.core ?? '^0.1.0',
    plugins: [
      {
        kind: 'policy',
        name,
        description: 'fixture policy',
        device: [],
        schema: { type: 'object', properties: { level: { type: 'integer', minimum: 0 } }, additionalProperties: false },
        defaultOptions: { level: 1 },
      },
    ],
  }
}

/** package.json fields of a fixture policy package: its manifest and core peer range. */
export function policyPackage(name: string, o: { core?: string } = {}): Record<string, unknown> {
  return { 'moe-route': policyManifest(name, o), peerDependencies: { '@moe-route/core': o.core ?? '^0.1.0' } }
}

/**
 * Source of a fixture policy package: keeps every pair, or misbehaves as asked.
 * `core` sets meta.core; `throwIn` makes create/apply throw (apply: on batches ≥ `fromBatch`);
 * `package` sets meta.package (default `moe-route-policy-<name>`).
 */
export function policySource(name: string, o: { core?: string; throwIn?: 'create' | 'apply'; fromBatch?: number; package?: string } = {}): string {
  return `import { definePolicy } from '@moe-route/core'
export default definePolicy({
  meta: {
    name: ${JSON.stringify(name)},
    package: ${JSON.stringify(o.package ?? `moe-route-policy-${name}`)},
    version: '1.0.0',
    core: ${JSON.stringify(o.core ?? '^0.1.0')},
    description: 'fixture policy',
    schema: { type: 'object', properties: { level: { type: 'integer', minimum: 0 } }, additionalProperties: false },
    defaultOptions: { level: 1 },
  },
  create(options) {
    ${o.throwIn === 'create' ? `throw new Error('cannot start: level ' + options.level)` : ''}
    return {
      name: ${JSON.stringify(name)},
      apply(routing, ctx) {
        ${o.throwIn === 'apply' ? `if (ctx.batchId >= ${o.fromBatch ?? 0}) throw new Error('exploded on batch ' + ctx.batchId)` : ''}
        return { routing, dropped: [] }
      },
    }
  },
})
`
}

function readPackage(dir: string): Record<string, unknown> & { version: string } {
  return JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8'))
}
