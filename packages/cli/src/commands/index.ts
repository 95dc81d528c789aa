/** Every CLI command module, in help order. */
import type { Command } from 'commander'
import type { CliContext } from '../context.js'
import { register as run } from './run.js'
import { register as route } from './route.js'
import { register as validate } from './validate.js'
import { register as plugins } from './plugins.js'
import { register as workload } from './workload.js'
import { register as trace } from './trace.js'
import { register as cache } from './cache.js'
import { register as simulate } from './simulate.js'
import { register as placement } from './placement.js'
import { register as rebalance } from './rebalance.js'
import { register as compare } from './compare.js'

/** Registration functions of the commands. */
export const commands: readonly ((program: Command, ctx: CliContext) => void)[] = [run, compare, route, validate, workload, trace, cache, simulate, placement, rebalance, plugins]
