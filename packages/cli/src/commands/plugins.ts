/** `moe-route plugins`: what is available and loaded, with versions and compatibility. */
import { CORE_VERSION } from '@moe-route/core'
import type { Command } from 'commander'
import { loadConfig } from '../config-loader.js'
import type { CliContext } from '../context.js'
import { table } from '../report.js'
import { loadBackendPlugin } from '../webgpu.js'

/** Registers `plugins`. */
export function register(program: Command, ctx: CliContext): void {
  program
    .command('plugins')
    .description('list the plugins available (built-in and loaded from the config), with versions and core ranges')
    .option('-c, --config <file>', 'also load the plugins this config names')
    .option('--json', 'print JSON')
    .action(async (flags: { config?: string; json?: boolean }) => {
      const { registry } = await loadConfig(flags.config, ctx.cwd)
      try {
        if (!registry.has('backend', 'webgpu')) registry.register(await loadBackendPlugin('webgpu'))
      } catch {
        /* listed as unavailable below */
      }
      const list = registry.list().map((p) => ({ ...p, compatible: true }))
      if (flags.json) return ctx.out(JSON.stringify({ core: CORE_VERSION, plugins: list }, null, 2))
      ctx.out(`@moe-route/core ${CORE_VERSION}`)
      ctx.out(table([['kind', 'name', 'package', 'version', 'core range', 'source'], ...list.map((p) => [p.kind, p.name, p.package, p.version, p.core, p.source])]))
    })
}
