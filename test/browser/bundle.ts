/**
 * Bundling for the browser with esbuild (as an app's bundler would: `platform: 'browser'`, so
 * packages resolve through their `browser` export condition, and a Node built-in that is still
 * reachable fails the build), serving a bundled page on loopback, and measuring the bundle of
 * core + capacity-drop + the WebGPU backend.
 */
import * as esbuild from 'esbuild'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import { browserTwins } from '../../scripts/tsup-browser.js'

const here = dirname(fileURLToPath(import.meta.url))

/** esbuild options of every browser bundle here: what an app's production build does. */
export const BROWSER_BUNDLE: esbuild.BuildOptions = {
  bundle: true,
  platform: 'browser',
  format: 'esm',
  target: 'es2022',
  minify: true,
  legalComments: 'none',
  logLevel: 'silent',
}

/** A page served on 127.0.0.1 (a secure context: WebGPU is available there). */
export interface ServedPage {
  readonly url: string
  close(): Promise<void>
}

/**
 * Bundles `entry` (a path relative to this folder) and serves it with an index.html that loads
 * it, on a free loopback port (esbuild's server). `close()` stops the server and removes the folder.
 */
export async function servePage(entry: string, title: string): Promise<ServedPage> {
  const dir = mkdtempSync(join(tmpdir(), 'moe-route-page-'))
  writeFileSync(join(dir, 'index.html'), `<!doctype html>\n<meta charset="utf-8">\n<title>${title}</title>\n<script type="module" src="/page.js"></script>\n`)
  const ctx = await esbuild.context({ ...BROWSER_BUNDLE, entryPoints: { page: join(here, entry) }, outdir: dir, write: false, sourcemap: 'inline' })
  try {
    await ctx.rebuild() // bundling errors surface here, not as a blank page
    const { port } = await ctx.serve({ host: '127.0.0.1', port: 0, servedir: dir })
    return {
      url: `http://127.0.0.1:${port}/`,
      async close() {
        await ctx.dispose()
        rmSync(dir, { recursive: true, force: true })
      },
    }
  } catch (e) {
    await ctx.dispose()
    rmSync(dir, { recursive: true, force: true })
    throw e
  }
}

/** What an app that runs the layer on WebGPU imports (the measured bundle). */
export const MEASURED_ENTRY = `import { createMoe } from '@moe-route/core'
import capacityDrop from '@moe-route/policy-capacity/capacity-drop'
import { createWebGpuBackend, webgpuBackend } from '@moe-route/backend-webgpu'
export { createMoe, capacityDrop, createWebGpuBackend, webgpuBackend }
`

/**
 * What a browser app that only routes (host policies, no layer) imports: core + one policy, the
 * README's "core + one policy" bundle (target 120 kB minified).
 */
export const ROUTING_ENTRY = `import { createMoe } from '@moe-route/core'
import capacityDrop from '@moe-route/policy-capacity/capacity-drop'
const moe = createMoe({
  config: { model: { experts: 8, topK: 2, hidden: 1, intermediate: 1 }, policies: [{ use: 'capacity-drop', options: { capacityFactor: 1 } }] },
  plugins: [capacityDrop],
})
const r = moe.route({ id: 0, tokens: 1, scores: new Float32Array([0.5, 0.2, 0.1, 0.1, 0.05, 0.03, 0.01, 0.01]) })
globalThis.result = r.telemetry.loadAfter
`

/** Size of a browser bundle ({@link MEASURED_ENTRY} unless another entry is given). */
export interface BundleSize {
  /** Minified bytes. */
  readonly minified: number
  /** Bytes after gzip -9. */
  readonly gzip: number
  /** Minified bytes by package (workspace packages by name, dependencies by npm name). */
  readonly byPackage: Readonly<Record<string, number>>
  /** Every input file of the bundle, relative to the repository root. */
  readonly inputs: readonly string[]
  /** Minified bytes by input file (relative to the repository root). */
  readonly byFile: Readonly<Record<string, number>>
}

/** Package a bundle input belongs to: the last `node_modules/<name>` in its path, else its workspace folder. */
function packageOf(input: string): string {
  const nm = input.lastIndexOf('node_modules/')
  if (nm >= 0) {
    const parts = input.slice(nm + 'node_modules/'.length).split('/')
    return parts[0].startsWith('@') ? `${parts[0]}/${parts[1]}` : parts[0]
  }
  const m = /^(packages\/(?:backends\/|policies\/)?[^/]+)\//.exec(input)
  return m ? m[1] : input
}

/**
 * Bundles `entry` ({@link MEASURED_ENTRY} by default, or {@link ROUTING_ENTRY}) from the built
 * packages (`dist/`, through their `browser` conditions) as an app's production build would,
 * minified, and measures it. With `fromSource`, the workspace packages come from their sources
 * instead (`@moe-route/source` condition, `*.browser.ts` twins, as their browser builds take
 * them): the same code, so `byFile` says which source file each package's bytes come from.
 */
export async function measureBrowserBundle(entry: string = MEASURED_ENTRY, { fromSource = false } = {}): Promise<BundleSize> {
  const root = join(here, '../..')
  const r = await esbuild.build({
    ...BROWSER_BUNDLE,
    ...(fromSource ? { conditions: ['@moe-route/source', 'module'], plugins: [browserTwins as esbuild.Plugin] } : {}),
    stdin: { contents: entry, resolveDir: here, sourcefile: 'measured-entry.js', loader: 'js' },
    absWorkingDir: root,
    write: false,
    metafile: true,
    outfile: 'measured.js',
  })
  const out = r.outputFiles[0]
  const byPackage: Record<string, number> = {}
  const byFile: Record<string, number> = {}
  const meta = Object.values(r.metafile.outputs)[0]
  for (const [input, { bytesInOutput }] of Object.entries(meta.inputs)) {
    const p = packageOf(input)
    byPackage[p] = (byPackage[p] ?? 0) + bytesInOutput
    byFile[input] = bytesInOutput
  }
  return { minified: out.contents.byteLength, gzip: gzipSync(out.contents, { level: 9 }).byteLength, byPackage, byFile, inputs: Object.keys(meta.inputs) }
}
