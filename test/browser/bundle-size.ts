/**
 * Prints the browser bundle size of core + capacity-drop + the WebGPU backend (minified and
 * gzipped, by package). Run after a build: `npm run bundle-size -w @moe-route/test-browser`.
 */
import { MEASURED_ENTRY, measureBrowserBundle } from './bundle.js'

const kB = (n: number) => `${(n / 1000).toFixed(1)} kB`
const size = await measureBrowserBundle()
console.log(`browser bundle (esbuild ${(await import('esbuild')).version}, platform browser, minified, ES2022) of:\n${MEASURED_ENTRY}`)
console.log(`${kB(size.minified)} minified, ${kB(size.gzip)} gzip -9\n`)
for (const [pkg, bytes] of Object.entries(size.byPackage).sort((a, b) => b[1] - a[1])) console.log(`${kB(bytes).padStart(10)}  ${pkg}`)
