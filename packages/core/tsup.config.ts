import { defineConfig } from 'tsup'

export default defineConfig({
  entry: { index: 'src/index.ts', testing: 'src/testing/index.ts', node: 'src/node/index.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'es2022',
  tsconfig: 'tsconfig.build.json',
  // Peers and workspace packages are never bundled: one copy of tsyringe, rxjs and core.
  external: [/^@moe-route\//, 'tsyringe', 'rxjs', 'reflect-metadata', 'webgpu'],
  // ajv's security meta-schema is data: bundled, so no JSON import happens at run time
  noExternal: ['ajv/lib/refs/json-schema-secure.json'],
})
