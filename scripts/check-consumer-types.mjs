#!/usr/bin/env node
// Type-checks a consumer project against the packed tarballs of every published package, the way
// a user's TypeScript sees them after `npm install`: moduleResolution node16 and nodenext, ESM
// (.mts) and CommonJS (.cts) importers, skipLibCheck off, strict. Run after a build. The install
// comes from npm's cache when it can (--prefer-offline); install scripts are not run (the Dawn
// binaries of `webgpu` are not needed to read its types).
import { execFileSync } from 'node:child_process'
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'

const root = new URL('..', import.meta.url).pathname
const keep = process.argv.includes('--keep')
const sh = (cmd, args, cwd) => execFileSync(cmd, args, { cwd, stdio: ['ignore', 'pipe', 'inherit'], encoding: 'utf8' })

const workspaces = JSON.parse(sh('npm', ['query', '.workspace'], root)).filter((w) => !w.private && w.name.startsWith('@moe-route/'))
const dir = mkdtempSync(join(tmpdir(), 'moe-route-consumer-'))
const packs = join(dir, 'packs')
mkdirSync(packs)
try {
  for (const w of workspaces) sh('npm', ['pack', '--silent', '--pack-destination', packs], join(root, w.location))
  const tarballs = readdirSync(packs).map((f) => join(packs, f))
  const app = join(dir, 'app')
  mkdirSync(app)
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'consumer', private: true, version: '0.0.0' }))
  const ts = JSON.parse(readFileSync(join(root, 'node_modules/typescript/package.json'), 'utf8')).version
  sh('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', '--ignore-scripts', '--loglevel=error', `typescript@${ts}`, '@types/node@^22', 'rxjs@^7.8.0', 'tsyringe@^4.8.0', 'reflect-metadata@^0.2.2', ...tarballs], app)

  // Every package's main entry, used so that its declarations are read and checked.
  const imports = workspaces.map((w, i) => `import * as m${i} from '${w.name}'`)
  const uses = workspaces.map((_, i) => `m${i}`).join(', ')
  const body = `
import { createMoe, type MoeConfig, type RouteResult } from '@moe-route/core'
import { capacityDrop } from '@moe-route/policy-capacity'
${imports.join('\n')}
const config: MoeConfig = { model: { experts: 8, topK: 2, hidden: 4, intermediate: 4 }, policies: [{ use: 'capacity-drop' }] }
export const moe = createMoe({ config, plugins: [capacityDrop] })
export const routed: (r: RouteResult) => number = (r) => r.tokens
export const all = [${uses}]
`
  writeFileSync(join(app, 'esm.mts'), body)
  writeFileSync(join(app, 'cjs.cts'), body)
  const failures = []
  for (const mode of ['node16', 'nodenext']) {
    const tsconfig = join(app, `tsconfig.${mode}.json`)
    writeFileSync(tsconfig, JSON.stringify({
      compilerOptions: { module: mode, moduleResolution: mode, target: 'es2022', strict: true, skipLibCheck: false, noEmit: true, types: ['node'], experimentalDecorators: true },
      files: ['esm.mts', 'cjs.cts'],
    }))
    try {
      sh(join(app, 'node_modules/.bin/tsc'), ['-p', tsconfig], app)
      console.log(`consumer types: ${mode} (ESM and CJS importers, skipLibCheck false): ok`)
    } catch (e) {
      console.log(`consumer types: ${mode}: FAILED\n${e.stdout}`)
      failures.push(mode)
    }
  }
  console.log(`${workspaces.length} packages packed and installed: ${workspaces.map((w) => w.name).join(', ')}`)
  process.exitCode = failures.length ? 1 : 0
} finally {
  if (keep) console.log(`kept ${dir}`)
  else rmSync(dir, { recursive: true, force: true })
}
