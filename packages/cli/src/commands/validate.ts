/** `moe-route validate`: print every problem of a config file. */
import type { Command } from 'commander'
import { ErrorCodes, MoeError } from '@moe-route/core'
import { collectConfigIssues } from '../config-loader.js'
import type { CliContext } from '../context.js'

/** Registers `validate`. */
export function register(program: Command, ctx: CliContext): void {
  program
    .command('validate')
    .description('check a config file: schema, plugins and their options; prints every error')
    .requiredOption('-c, --config <file>', 'config file')
    .option('--json', 'print the issues as JSON')
    .action(async (flags: { config: string; json?: boolean }) => {
      const issues = await collectConfigIssues(flags.config, ctx.cwd)
      if (flags.json) ctx.out(JSON.stringify({ valid: issues.length === 0, issues }, null, 2))
      else if (issues.length === 0) ctx.out(`${flags.config}: valid`)
      else for (const i of issues) ctx.err(`${i.code}: ${flags.config}: ${i.path}: ${i.message}`)
      if (issues.length > 0) {
        throw new MoeError(ErrorCodes.CONFIG_INVALID, `${flags.config} has ${issues.length} problem${issues.length === 1 ? '' : 's'}`, { issues, reported: true })
      }
    })
}
