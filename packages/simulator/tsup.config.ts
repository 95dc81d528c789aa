import { defineConfig } from 'tsup'

export default defineConfig({
  entry: { index: 'src/index.ts', node: 'src/node.ts', worker: 'src/worker.ts' },
  // import.meta.url in the CJS build (the worker file is found next to the entry)
  shims: true,
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'es2022',
  tsconfig: 'tsconfig.build.json',
  // Peers and workspace packages are never bundled: one copy of tsyringe, rxjs and core.
  external: [/^@moe-route\//, 'tsyringe', 'rxjs', 'reflect-metadata', 'webgpu'],
})
