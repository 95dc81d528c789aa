/** Every CLI command module, in help order. */
import type { Command } from 'commander'
import type { CliContext } from '../context.js'
import { register as run } from './run.js'
import { register as route } from './route.js'
import { register as validate } from './validate.js'
import { register as plugins } from './plugins.js'

/** Registration functions of the commands. */
export const commands: readonly ((program: Command, ctx: CliContext) => void)[] = [run, route, validate, plugins]
