/**
 * `moe-route plugins`: every plugin available — core's and the first-party built-ins, those
 * loaded from the config, the lazily loaded WebGPU backend — plus plugin packages installed
 * in node_modules but not loaded, each with its version, core range and compatibility.
 */
import { CORE_VERSION, maxOf, type RegisteredPlugin } from '@moe-route/core'
import { findInstalledPlugins, type InstalledPluginPackage } from '@moe-route/core/node'
import type { Command } from 'commander'
import { resolve } from 'node:path'
import { loadConfig } from '../config-loader.js'
import type { CliContext } from '../context.js'
import { loadBackendPlugin } from '../webgpu.js'

/** One row of `moe-route plugins --json`. */
export interface PluginsListing {
  core: string
  /** Registered plugins: `status` is `built-in`, or `loaded` for one the config names (read from its package.json manifest; never run here). */
  plugins: (RegisteredPlugin & { status: 'built-in' | 'loaded'; compatible: true })[]
  /** Plugin packages found in node_modules that the config does not load (with what their manifest declares, or why it is unusable). */
  installed: (Omit<InstalledPluginPackage, 'dir'> & { status: 'installed' })[]
  /** Built-ins that cannot be loaded here, with why. */
  unavailable: { kind: string; name: string; package: string; reason: string }[]
}

/** Registers `plugins`. */
export function register(program: Command, ctx: CliContext): void {
  program
    .command('plugins')
    .description('list plugins: built-in, loaded from the config, and installed in node_modules, with versions and core compatibility')
    .option('-c, --config <file>', 'also load the plugins this config names')
    .option('--json', 'print JSON')
    .action(async (flags: { config?: string; json?: boolean }) => {
      const listing = await listPlugins(flags.config, ctx.cwd)
      ctx.out(flags.json ? JSON.stringify(listing, null, 2) : renderPlugins(listing))
    })
}

/** Builds the listing (what `moe-route plugins --json` prints). */
export async function listPlugins(configPath: string | undefined, cwd: string): Promise<PluginsListing> {
  // manifests only: listing plugins runs none of them
  const { registry } = await loadConfig(configPath, cwd, undefined, { execute: false })
  const unavailable: PluginsListing['unavailable'] = []
  if (!registry.has('backend', 'webgpu')) {
    try {
      registry.register(await loadBackendPlugin('webgpu'))
    } catch (e) {
      unavailable.push({ kind: 'backend', name: 'webgpu', package: '@moe-route/backend-webgpu', reason: (e as Error).message })
    }
  }
  const plugins = registry.list().map((p) => ({ ...p, status: p.source === 'built-in' ? ('built-in' as const) : ('loaded' as const), compatible: true as const }))
  const loadedPackages = new Set(plugins.map((p) => p.package))
  const from = configPath ? resolve(cwd, configPath, '..') : cwd
  const installed = findInstalledPlugins(from)
    .filter((p) => !loadedPackages.has(p.name))
    .map(({ dir: _dir, ...p }) => ({ ...p, status: 'installed' as const }))
  return { core: CORE_VERSION, plugins, installed, unavailable }
}

/** The human-readable listing. */
export function renderPlugins(l: PluginsListing): string {
  const lines = [`@moe-route/core ${l.core}`, '']
  lines.push(
    leftTable([
      ['kind', 'name', 'package', 'version', 'core range', 'compatible', 'status'],
      ...l.plugins.map((p) => [p.kind, p.name, p.package, p.version, p.core, 'yes', p.status === 'loaded' ? `loaded from ${p.source}` : 'built-in']),
    ]),
  )
  if (l.unavailable.length > 0) {
    lines.push('', 'unavailable here:')
    for (const u of l.unavailable) lines.push(`  ${u.kind} ${u.name} (${u.package}): ${u.reason}`)
  }
  if (l.installed.length > 0) {
    lines.push('', 'installed in node_modules, not loaded (name the package in a config\'s "plugins" or "use" to load it):')
    lines.push(
      leftTable([
        ['package', 'version', 'core range', 'compatible', 'declares'],
        ...l.installed.map((p) => [
          p.name,
          p.version,
          p.coreRange ?? '(none declared)',
          p.compatible ? 'yes' : `no: needs ${p.coreRange}, this is ${l.core}`,
          p.declares ? p.declares.map((d) => `${d.kind} ${d.name}`).join(', ') : `(no usable manifest: ${(p.manifestError ?? '').split(':')[0]})`,
        ]),
      ])
        .split('\n')
        .map((s) => `  ${s}`)
        .join('\n'),
    )
  }
  return lines.join('\n')
}

/** Rows as a left-aligned table (first row = header), no trailing spaces. */
function leftTable(rows: readonly (readonly (string | number)[])[]): string {
  const cells = rows.map((r) => r.map(String))
  const widths = cells[0].map((_, i) => maxOf(cells.map((r) => (r[i] ?? '').length), 0))
  return cells.map((r) => r.map((c, i) => c.padEnd(widths[i])).join('  ').trimEnd()).join('\n')
}
