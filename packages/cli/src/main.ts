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
  const security: { allowLocalPlugins?: boolean; isolatePlugins?: boolean } = { ...ctx.security }
  const program = new Command('moe-route')
    .description('Mixture-of-Experts inference routing: policies, dispatch, expert buffering, placement and a WebGPU layer')
    .version(CORE_VERSION, '-v, --version')
    .option('--allow-local-plugins', 'let run, route and simulate import plugins from files inside the project (a "use" or "plugins" entry like ./my-policy.js)')
    .option('--isolate-plugins', 'run plugins loaded from packages in a worker thread (own globals, a hung call is terminated; see SECURITY.md)')
    .exitOverride()
    .configureOutput({ writeOut: (s) => ctx.out(s.replace(/\n$/, '')), writeErr: (s) => ctx.err(s.replace(/\n$/, '')), outputError: () => {} })
    .showHelpAfterError(false)
    .hook('preAction', () => {
      const o = program.opts<{ allowLocalPlugins?: boolean; isolatePlugins?: boolean }>()
      if (o.allowLocalPlugins) security.allowLocalPlugins = true
      if (o.isolatePlugins) security.isolatePlugins = true
    })
  const c: CliContext = { ...ctx, security }
  for (const register of commands) register(program, c)
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
    // a bug, not bad input: the message only (the stack with MOE_ROUTE_DEBUG=1)
    const debug = typeof process !== 'undefined' && process.env.MOE_ROUTE_DEBUG === '1'
    ctx.err(`MOE_ROUTE_ERR_INTERNAL: ${debug ? ((e as Error)?.stack ?? String(e)) : ((e as Error)?.message ?? String(e))}`)
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
