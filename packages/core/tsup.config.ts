import { defineConfig, type Options } from 'tsup'
import { BROWSER_ENTRY, browserBuild, browserTwins } from '../../scripts/tsup-browser.js'

/** The browser entry imports `./polyfill.browser.js` (its own file in dist/) wherever the source imports `./polyfill.js`. */
const browserPolyfillFirst: NonNullable<Options['esbuildPlugins']>[number] = {
  name: 'moe-route-polyfill-first',
  setup(build) {
    build.onResolve({ filter: /^\.\/polyfill\.js$/ }, (args) => (args.importer.endsWith('polyfill.browser.ts') ? undefined : { path: './polyfill.browser.js', external: true }))
  },
}

// Peers and workspace packages are never bundled: one copy of tsyringe, rxjs and core.
const external = [/^@moe-route\//, 'tsyringe', 'rxjs', 'reflect-metadata', 'webgpu']

export default defineConfig([
  {
    entry: { index: 'src/index.ts', testing: 'src/testing/index.ts', node: 'src/node/index.ts' },
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    // everything in dist/ but the browser build's files, which the other build writes meanwhile
    clean: [`!${BROWSER_ENTRY}.*`, '!polyfill.browser.*'],
    target: 'es2022',
    tsconfig: 'tsconfig.build.json',
    external,
    // ajv's security meta-schema is data: bundled, so no JSON import happens at run time
    noExternal: ['ajv/lib/refs/json-schema-secure.json'],
  },
  // dist/index.browser.js: src/schema/engine.browser.ts (the eval-free interpreter, no Ajv) and
  // src/polyfill.browser.ts replace their Node twins. The polyfill stays a module of its own,
  // imported first: bundled into the entry it would run after tsyringe's check for it.
  {
    ...browserBuild(external),
    entry: { [BROWSER_ENTRY]: 'src/index.ts', 'polyfill.browser': 'src/polyfill.browser.ts' },
    esbuildPlugins: [browserPolyfillFirst, browserTwins],
  },
])
