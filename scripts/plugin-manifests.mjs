#!/usr/bin/env node
// Writes (--write) or checks (default) the package.json "moe-route" manifest of every
// first-party plugin package from what its built module exports, so the meta that `validate`
// and `plugins` read without running a plugin is the meta its code carries. Needs a build.
// The test test/integration/manifests.test.ts makes the same check from the sources.
import { readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { ROOT, manifestPackages } from './workspace.mjs'

/** The plugin packages: every workspace package with a `moe-route` manifest (folders relative to the root). */
const PLUGIN_PACKAGES = manifestPackages().map(({ dir }) => dir)

const node = await import(pathToFileURL(join(ROOT, 'packages/core/dist/node.js')).href)
const write = process.argv.includes('--write')
let stale = 0
for (const dir of PLUGIN_PACKAGES) {
  const file = join(ROOT, dir, 'package.json')
  const text = readFileSync(file, 'utf8')
  const pkg = JSON.parse(text)
  const mod = await import(pathToFileURL(join(ROOT, dir, 'dist/index.js')).href)
  const plugins = node.pluginsOf(mod).filter((p) => p.meta.package === pkg.name)
  const manifest = node.manifestOf(plugins)
  const same = node.canonicalJson(pkg['moe-route']) === node.canonicalJson(manifest)
  if (same) continue
  stale++
  if (write) {
    pkg['moe-route'] = manifest
    writeFileSync(file, JSON.stringify(pkg, null, 2) + '\n')
    console.log(`wrote ${dir}/package.json: ${plugins.map((p) => `${p.kind} ${p.meta.name}`).join(', ')}`)
  } else console.error(`${dir}/package.json: "moe-route" differs from what the module exports (run: node scripts/plugin-manifests.mjs --write)`)
}
if (!write && stale > 0) process.exit(1)
if (!write) console.log(`${PLUGIN_PACKAGES.length} plugin manifests match their modules`)
