import { defineConfig } from 'tsup'

export default defineConfig({
  entry: { index: 'src/index.ts', bin: 'src/bin.ts', 'simulate-job': 'src/commands/simulate-job.ts' },
  // import.meta.url in the CJS build (simulate finds its worker job module next to itself)
  shims: true,
  format: ['esm', 'cjs'],
  dts: { entry: { index: 'src/index.ts' } },
  sourcemap: true,
  clean: true,
  target: 'es2022',
  tsconfig: 'tsconfig.build.json',
  external: [/^@moe-route\//, 'tsyringe', 'rxjs', 'reflect-metadata', 'webgpu', 'commander', 'cli-progress'],
})
