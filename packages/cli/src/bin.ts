#!/usr/bin/env node
import { startWatchdog } from '@moe-route/core/node'
import { main } from './main.js'

// The last line of defence against a plugin whose top-level code blocks the thread while it is
// imported (its time limit cannot fire then): a watchdog thread stops the process with a coded error.
startWatchdog()

// A reader that stops early (`moe-route route … | head`) closes the pipe: that ends the output,
// it is not an error (no EPIPE stack trace). Any other stream error is reported with a code.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0)
    process.stderr.write(`MOE_ROUTE_ERR_INTERNAL: cannot write output: ${e.message}\n`)
    process.exit(1)
  })
}

let settled = false
void main(process.argv.slice(2)).then((code) => {
  settled = true
  process.exitCode = code
  // Once the command is done, nothing a plugin left behind (a live timer, an open handle) may
  // keep the process alive: flush what was written, then exit.
  let pending = 2
  const done = () => --pending === 0 && process.exit(code)
  process.stdout.write('', done)
  process.stderr.write('', done)
})
// A command whose work waits on something that can never settle (a plugin's import that never
// resolves, say) would otherwise let Node exit 0 with no output, which reads as success.
process.on('beforeExit', () => {
  if (settled) return
  settled = true
  process.stderr.write('MOE_ROUTE_ERR_INTERNAL_UNSETTLED: the command stopped before finishing (a promise that can never settle: a plugin that never resolves, or an internal error)\n')
  process.exitCode = 1
})
