/**
 * Prints the browser bundle size (minified and gzipped, by package) of core + capacity-drop +
 * the WebGPU backend, or with `--routing` of core + capacity-drop alone (an app that only
 * routes). `--budget-kb N` exits 1 when the bundle is over N kB minified; `--json` prints JSON;
 * `--files` bundles from the workspace sources instead and lists the bytes of every input file
 * (where a package's bytes come from; within a few kB of the built bundle).
 * Run after a build: `npm run bundle-size -w @moe-route/test-browser [-- --routing --budget-kb 125]`.
 */
import { MEASURED_ENTRY, ROUTING_ENTRY, measureBrowserBundle } from './bundle.js'

const args = process.argv.slice(2)
const budgetAt = args.indexOf('--budget-kb')
const budgetKb = budgetAt >= 0 ? Number(args[budgetAt + 1]) : null
if (budgetKb !== null && !(budgetKb > 0)) throw new Error(`--budget-kb needs a positive number of kB, got ${args[budgetAt + 1]}`)
const entry = args.includes('--routing') ? ROUTING_ENTRY : MEASURED_ENTRY

const kB = (n: number) => `${(n / 1000).toFixed(1)} kB`
const files = args.includes('--files')
const size = await measureBrowserBundle(entry, { fromSource: files })
const ok = budgetKb === null || size.minified <= budgetKb * 1000
const byPackage = Object.entries(size.byPackage).sort((a, b) => b[1] - a[1])
if (args.includes('--json')) {
  console.log(JSON.stringify({ minifiedBytes: size.minified, gzipBytes: size.gzip, budgetBytes: budgetKb === null ? null : budgetKb * 1000, ok, byPackage: Object.fromEntries(byPackage) }))
} else {
  console.log(`browser bundle (esbuild ${(await import('esbuild')).version}, platform browser, minified, ES2022) of:\n${entry}`)
  console.log(`${kB(size.minified)} minified, ${kB(size.gzip)} gzip -9${budgetKb === null ? '' : `; budget ${budgetKb} kB`}\n`)
  for (const [pkg, bytes] of byPackage) console.log(`${kB(bytes).padStart(10)}  ${pkg}`)
  if (files) {
    console.log(`\nby input file (from the workspace sources):`)
    for (const [file, bytes] of Object.entries(size.byFile).sort((a, b) => b[1] - a[1])) if (bytes > 0) console.log(`${kB(bytes).padStart(10)}  ${file}`)
  }
  if (!ok) console.log(`\nOVER BUDGET by ${kB(size.minified - budgetKb! * 1000)}`)
}
process.exitCode = ok ? 0 : 1
