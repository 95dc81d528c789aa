#!/usr/bin/env node
// Creates a package shell in the monorepo (package.json, tsconfig, tsup config, src/index.ts).
// Usage: node scripts/new-package.mjs <dir> <npm-name> "<description>" [--peer-core] [--entry name=path ...]
// Existing files are never overwritten.
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'

const [dir, name, description, ...rest] = process.argv.slice(2)
if (!dir || !name) {
  console.error('usage: new-package.mjs <dir> <npm-name> "<description>" [--peer-core] [--entry name=path]')
  process.exit(2)
}
const peerCore = rest.includes('--peer-core')
const entries = { index: 'src/index.ts' }
for (let i = 0; i < rest.length; i++) {
  if (rest[i] === '--entry') {
    const [k, v] = rest[++i].split('=')
    entries[k] = v
  }
}
const root = relative(dir, '.') || '.'
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
  keywords: ['moe', 'mixture-of-experts', 'routing', ...(name.includes('policy-') ? ['moe-plugin', 'moe-policy'] : [])],
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
    ? { peerDependencies: { '@moe-route/core': '^0.1.0' }, devDependencies: { '@moe-route/core': '0.1.0' } }
    : {}),
  engines: { node: '>=20.10' },
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
write('src/index.ts', `/** ${description} */\nexport {}\n`)
console.log(`created ${dir} (${name})`)
