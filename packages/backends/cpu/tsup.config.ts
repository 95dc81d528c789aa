import { defineConfig } from 'tsup'
import { browserBuild, cleanKeepingBrowser } from '../../../scripts/tsup-browser.js'

// Peers and workspace packages are never bundled: one copy of tsyringe, rxjs and core.
const external = [/^@moe-route\//, 'tsyringe', 'rxjs', 'reflect-metadata', 'webgpu']

export default defineConfig([
  {
    entry: { index: 'src/index.ts' },
    format: ['esm', 'cjs'],
    dts: true,
    sourcemap: true,
    clean: cleanKeepingBrowser,
    target: 'es2022',
    tsconfig: 'tsconfig.build.json',
    external,
  },
  // dist/index.browser.js: src/host-cpu.browser.ts instead of src/host-cpu.ts (no node:os)
  browserBuild(external),
])
