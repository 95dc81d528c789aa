/**
 * The browser build of a package (used by the tsup configs of packages with a `browser`
 * export condition). A source file `x.browser.ts` next to `x.ts` replaces it in this build:
 * the one place where a package touches Node (Dawn's addon, `node:fs`, `node:os`) has a
 * browser twin with the same exports, and everything else is shared. esbuild bundles for
 * `platform: 'browser'`, so a Node built-in that is still reachable fails the build.
 */
import { existsSync } from 'node:fs'
import { resolve } from 'node:path'
import type { Options } from 'tsup'

type EsbuildPlugin = NonNullable<Options['esbuildPlugins']>[number]

/** esbuild plugin: a relative import of `./x.js` resolves to `./x.browser.ts` when that file exists. */
export const browserTwins: EsbuildPlugin = {
  name: 'moe-route-browser-twins',
  setup(build) {
    build.onResolve({ filter: /^\.\.?\// }, (args) => {
      const twin = `${resolve(args.resolveDir, args.path).replace(/\.[cm]?[jt]s$/, '')}.browser.ts`
      return twin !== args.importer && existsSync(twin) ? { path: twin } : undefined
    })
  },
}

/** Output name of the browser entry: `dist/index.browser.js` (ESM only). */
export const BROWSER_ENTRY = 'index.browser'

/**
 * tsup options of the browser entry: `src/index.ts` with the `*.browser.ts` twins, ESM, no
 * declarations (the types are the Node entry's `dist/index.d.ts`: the API is the same).
 */
export function browserBuild(external: NonNullable<Options['external']>): Options {
  return {
    entry: { [BROWSER_ENTRY]: 'src/index.ts' },
    format: ['esm'],
    platform: 'browser',
    dts: false,
    sourcemap: true,
    // the Node build cleans dist/ (keeping this entry's files); both builds run at once
    clean: false,
    target: 'es2022',
    tsconfig: 'tsconfig.build.json',
    external,
    esbuildPlugins: [browserTwins],
  }
}

/**
 * Both builds of a package with a browser entry: `dist/index.{js,cjs,d.ts,d.cts}` for Node
 * (ESM + CJS + types) and `dist/index.browser.js` (see {@link browserBuild}).
 * @param external peers and workspace packages, never bundled
 * @param node options of the Node build that replace the defaults (e.g. a declarations banner)
 */
export function nodeAndBrowserBuilds(external: NonNullable<Options['external']>, node: Options = {}): Options[] {
  return [
    {
      entry: { index: 'src/index.ts' },
      format: ['esm', 'cjs'],
      dts: true,
      sourcemap: true,
      // everything in dist/ but the browser entry's files, which the other build writes meanwhile
      clean: [`!${BROWSER_ENTRY}.*`],
      target: 'es2022',
      tsconfig: 'tsconfig.build.json',
      external,
      ...node,
    },
    browserBuild(external),
  ]
}
