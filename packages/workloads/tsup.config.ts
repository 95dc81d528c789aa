import { defineConfig } from 'tsup'

export default defineConfig({
  entry: { index: "src/index.ts", synthetic: "src/synthetic/synthetic.ts" },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'es2022',
  tsconfig: 'tsconfig.build.json',
  // import.meta.url locates the shipped data/ folder; shims make it work in the CJS build too
  shims: true,
  // Peers and workspace packages are never bundled: one copy of tsyringe, rxjs and core.
  external: [/^@moe-route\//, 'tsyringe', 'rxjs', 'reflect-metadata', 'webgpu', 'mistral-tokenizer-js'],
})
