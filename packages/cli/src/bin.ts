#!/usr/bin/env node
import { main } from './main.js'

let settled = false
main(process.argv.slice(2)).then((code) => {
  settled = true
  process.exitCode = code
})
// A command whose work waits on something that can never settle (a plugin's import that never
// resolves, say) would otherwise let Node exit 0 with no output, which reads as success.
process.on('beforeExit', () => {
  if (settled) return
  settled = true
  process.stderr.write('MOE_ROUTE_ERR_INTERNAL_UNSETTLED: the command stopped before finishing (a promise that can never settle: a plugin that never resolves, or an internal error)\n')
  process.exitCode = 1
})
