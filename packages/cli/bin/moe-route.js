#!/usr/bin/env node
// The `moe-route` command. This file is committed, not built, so that `npm ci` in a fresh clone
// links it into node_modules/.bin (a bin that points into dist/ is not linked when dist/ does not
// exist yet); `npx moe-route …` then runs the built CLI in dist/.
import('../dist/bin.js').catch((e) => {
  if (e?.code === 'ERR_MODULE_NOT_FOUND' && /dist[\\/]bin\.js/.test(String(e.message))) {
    process.stderr.write('MOE_ROUTE_ERR_CLI_NOT_BUILT: the CLI is not built yet: run `npm run build` at the root of the moe-route checkout\n')
    process.exitCode = 1
    return
  }
  throw e
})
