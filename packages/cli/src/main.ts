/**
 * The moe-route command line. Every error goes to stderr as `CODE: message` and the exit
 * status is non-zero (1 for errors, 2 for usage).
 */
import { CORE_VERSION, isMoeError } from '@moe-route/core'
import { Command, CommanderError } from 'commander'
import type { CliContext } from './context.js'
import { commands } from './commands/index.js'

/** Runs the CLI with `argv` (without node and script). Returns the exit status. */
export async function main(argv: readonly string[], ctx: CliContext = defaultContext()): Promise<number> {
  const program = new Command('moe-route')
    .description('Mixture-of-Experts inference routing: policies, dispatch, expert buffering, placement and a WebGPU layer')
    .version(CORE_VERSION, '-v, --version')
    .exitOverride()
    .configureOutput({ writeOut: (s) => ctx.out(s.replace(/\n$/, '')), writeErr: (s) => ctx.err(s.replace(/\n$/, '')), outputError: () => {} })
    .showHelpAfterError(false)
  for (const register of commands) register(program, ctx)
  try {
    await program.parseAsync([...argv], { from: 'user' })
    return 0
  } catch (e) {
    if (e instanceof CommanderError) {
      if (e.code === 'commander.helpDisplayed' || e.code === 'commander.version' || e.exitCode === 0) return 0
      ctx.err(`MOE_ROUTE_ERR_USAGE: ${e.message.replace(/^error: /, '')}`)
      return 2
    }
    if (isMoeError(e)) {
      if (!e.details.reported) ctx.err(`${e.code}: ${e.message}`)
      return 1
    }
    ctx.err(`MOE_ROUTE_ERR_INTERNAL: ${(e as Error)?.stack ?? String(e)}`)
    return 1
  }
}

/** stdout/stderr of this process. */
export function defaultContext(): CliContext {
  return {
    out: (s) => process.stdout.write(s + '\n'),
    err: (s) => process.stderr.write(s + '\n'),
    interactive: Boolean(process.stderr.isTTY),
    cwd: process.cwd(),
  }
}
