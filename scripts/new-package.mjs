#!/usr/bin/env node
// Creates a package shell in the monorepo (package.json, tsconfig, tsup config, src/index.ts).
// Usage: node scripts/new-package.mjs <dir> <npm-name> "<description>" [--plugin] [--peer-core] [--entry name=path ...]
// --plugin: a plugin package (core as a peer, the plugin keywords, a starter policy that keeps
// every pair, with its meta read from package.json and the matching `moe-route` manifest, which
// scripts/plugin-manifests.mjs --write rewrites from the build once the policy grows); it is then listed
// for the CLI (scripts/first-party.mjs --write); its own src/conformance.test.ts runs the testkit
// on it (@moe-route/testkit as a dev dependency), and the manifest check and the dist checks
// find it through scripts/workspace.mjs: nothing else to edit.
// Run from the repository root. Existing files are never overwritten.
import { execFileSync } from 'node:child_process'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const [dir, name, description, ...rest] = process.argv.slice(2)
if (!dir || !name) {
  console.error('usage: new-package.mjs <dir> <npm-name> "<description>" [--peer-core] [--entry name=path]')
  process.exit(2)
}
const plugin = rest.includes('--plugin')
const peerCore = plugin || rest.includes('--peer-core')
const entries = { index: 'src/index.ts' }
for (let i = 0; i < rest.length; i++) {
  if (rest[i] === '--entry') {
    const [k, v] = rest[++i].split('=')
    entries[k] = v
  }
}
const root = relative(dir, '.') || '.'
// the starter policy of a plugin package: its id is the npm name without scope and prefixes
const policyName = name.replace(/^@[^/]+\//, '').replace(/^moe-route-/, '').replace(/^policy-/, '')
const policyIdent = policyName.replace(/-([a-z0-9])/g, (_, c) => c.toUpperCase())
const starter = {
  kind: 'policy',
  name: policyName,
  description,
  device: [],
  schema: { type: 'object', additionalProperties: false },
  defaultOptions: {},
}
const write = (file, text) => {
  const p = join(dir, file)
  if (existsSync(p)) return
  mkdirSync(join(p, '..'), { recursive: true })
  writeFileSync(p, text)
}
const exportsMap = {}
for (const [k, v] of Object.entries(entries)) {
  exportsMap[k === 'index' ? '.' : `./${k}`] = {
    '@moe-route/source': `./${v}`,
    import: { types: `./dist/${k}.d.ts`, default: `./dist/${k}.js` },
    require: { types: `./dist/${k}.d.cts`, default: `./dist/${k}.cjs` },
  }
}
exportsMap['./internal/*'] = null
exportsMap['./package.json'] = './package.json'
const pkg = {
  name,
  version: '0.1.0',
  description,
  type: 'module',
  sideEffects: false,
  license: 'Apache-2.0',
  keywords: ['moe', 'mixture-of-experts', 'routing', ...(plugin || name.includes('policy-') ? ['moe-plugin', 'moe-policy'] : [])],
  exports: exportsMap,
  main: './dist/index.cjs',
  module: './dist/index.js',
  types: './dist/index.d.cts',
  files: ['dist', 'src', '!src/**/*.test.ts', 'README.md'],
  scripts: {
    build: 'tsup',
    typecheck: 'tsc -p tsconfig.json --noEmit',
    test: `vitest run --root ${root} ${dir}/`,
    'lint:pkg': 'publint --strict && attw --pack . --profile node16',
  },
  ...(peerCore
    ? { peerDependencies: { '@moe-route/core': '^0.1.0' }, devDependencies: { '@moe-route/core': '0.1.0', ...(plugin ? { '@moe-route/testkit': '0.1.0' } : {}) } }
    : {}),
  engines: { node: '>=22' },
  ...(plugin ? { 'moe-route': { core: '^0.1.0', plugins: [starter] } } : {}),
}
write('package.json', JSON.stringify(pkg, null, 2) + '\n')
write(
  'tsconfig.json',
  JSON.stringify({ extends: `${root}/tsconfig.base.json`, include: ['src', '*.ts'] }, null, 2) + '\n',
)
write(
  'tsconfig.build.json',
  JSON.stringify(
    { extends: './tsconfig.json', compilerOptions: { customConditions: [] }, include: ['src'], exclude: ['src/**/*.test.ts'] },
    null,
    2,
  ) + '\n',
)
write(
  'tsup.config.ts',
  `import { defineConfig } from 'tsup'

export default defineConfig({
  entry: ${JSON.stringify(Object.fromEntries(Object.entries(entries)))},
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'es2022',
  tsconfig: 'tsconfig.build.json',
  // Peers and workspace packages are never bundled: one copy of tsyringe, rxjs and core.
  external: [/^@moe-route\\//, 'tsyringe', 'rxjs', 'reflect-metadata', 'webgpu'],
})
`,
)
if (plugin) {
  write(
    'src/meta.ts',
    `/**
 * Package identity used in every plugin's \`meta\`, read from package.json when the package is
 * built (esbuild inlines the three fields), so no version is ever copied by hand.
 */
import { name, peerDependencies, version } from '../package.json'

/** Package name (package.json's \`name\`). */
export const PACKAGE_NAME: string = name
/** Package version (package.json's \`version\`). */
export const PACKAGE_VERSION: string = version
/** Range of @moe-route/core these plugins work with (package.json's peer dependency on it). */
export const CORE_RANGE: string = peerDependencies['@moe-route/core']
`,
  )
  write(
    'src/index.ts',
    `/** ${description} */
import { definePolicy } from '@moe-route/core'
import { CORE_RANGE, PACKAGE_NAME, PACKAGE_VERSION } from './meta.js'

/**
 * The \`${policyName}\` policy (a starter that keeps every pair: write its decisions in \`apply\`,
 * then rewrite the package.json manifest with \`node scripts/plugin-manifests.mjs --write\`).
 */
export const ${policyIdent} = definePolicy<Record<string, never>>({
  meta: {
    name: '${policyName}',
    package: PACKAGE_NAME,
    version: PACKAGE_VERSION,
    core: CORE_RANGE,
    description: '${description.replace(/[\\']/g, '\\$&')}',
    schema: { type: 'object', additionalProperties: false },
    defaultOptions: {},
  },
  create: () => ({ name: '${policyName}', apply: (routing) => ({ routing, dropped: [] }) }),
})

export default ${policyIdent}
`,
  )
  write(
    'src/conformance.test.ts',
    `/**
 * This package's plugins through the testkit (as each ESLint rule's test calls RuleTester): the
 * manifest in package.json against the module, and the conformance suite of every policy it exports.
 */
import { pluginPackageConformance } from '@moe-route/testkit'
import { describe, it } from 'vitest'
import packageJson from '../package.json' with { type: 'json' }
import * as mod from './index.js'

void pluginPackageConformance(mod, packageJson, { describe, it, runs: 60 })
`,
  )
} else write('src/index.ts', `/** ${description} */\nexport {}\n`)
console.log(`created ${dir} (${name})`)
if (plugin) {
  // the CLI's list of first-party plugin packages and its dependencies
  execFileSync(process.execPath, [fileURLToPath(new URL('./first-party.mjs', import.meta.url)), '--write', '--root', process.cwd()], { stdio: 'inherit' })
  console.log('next: npm install (links the package); after changing its plugins: build, then node scripts/plugin-manifests.mjs --write')
}
