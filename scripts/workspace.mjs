// The monorepo's packages as the root package.json's `workspaces` list them: the one source of
// "which packages are there" for the scripts and tests that used to keep hand-written lists
// (the CLI's first-party plugins, the testkit's conformance run, the dist checks, the manifest
// and fuzz scripts). A package made by scripts/new-package.mjs is found here with no other edit.
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

/** The repository root (this file's parent folder). */
export const ROOT = fileURLToPath(new URL('..', import.meta.url))

/**
 * Every workspace package: `{ dir, pkg }` with `dir` relative to `root` (forward slashes) and
 * `pkg` its parsed package.json, in workspace order, then by folder name. A workspace entry is
 * a folder or a folder followed by `/*` (the only forms the root package.json uses).
 */
export function workspacePackages(root = ROOT) {
  const { workspaces = [] } = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8'))
  const dirs = workspaces.flatMap((w) => {
    if (!w.endsWith('/*')) return [w]
    const parent = w.slice(0, -2)
    if (!existsSync(join(root, parent))) return []
    return readdirSync(join(root, parent), { withFileTypes: true })
      .filter((e) => e.isDirectory())
      .map((e) => `${parent}/${e.name}`)
      .sort()
  })
  return dirs
    .filter((dir) => existsSync(join(root, dir, 'package.json')))
    .map((dir) => ({ dir, pkg: JSON.parse(readFileSync(join(root, dir, 'package.json'), 'utf8')) }))
}

/** The packages we publish: not private, under packages/. */
export function publishedPackages(root = ROOT) {
  return workspacePackages(root).filter(({ dir, pkg }) => dir.startsWith('packages/') && !pkg.private)
}

/**
 * First-party plugin packages: published packages whose package.json carries a `moe-route`
 * plugin manifest (scripts/plugin-manifests.mjs writes it from the module's exports). These
 * are the plugins the CLI registers, the testkit runs its conformance suite on and the
 * manifest check covers.
 */
export function firstPartyPluginPackages(root = ROOT) {
  return publishedPackages(root).filter(({ pkg }) => pkg['moe-route'] !== undefined)
}

/** Every workspace package (examples included) with a `moe-route` manifest. */
export function manifestPackages(root = ROOT) {
  return workspacePackages(root).filter(({ pkg }) => pkg['moe-route'] !== undefined)
}
