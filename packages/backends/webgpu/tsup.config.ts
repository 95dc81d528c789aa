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
  // dist/index.browser.js: the *.browser.ts twins (navigator.gpu only, no Dawn; no checkpoint
  // files) instead of src/gpu/gpu-entry.ts and src/pipeline/checkpoint-file.ts
  browserBuild(external),
])
