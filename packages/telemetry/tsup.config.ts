import { defineConfig } from 'tsup'

export default defineConfig({
  entry: { index: 'src/index.ts' },
  format: ['esm', 'cjs'],
  dts: true,
  sourcemap: true,
  clean: true,
  target: 'es2022',
  tsconfig: 'tsconfig.build.json',
  // Peers are never bundled: the user's prom-client Registry and OpenTelemetry API (one global
  // MeterProvider per process) must be the ones we record into.
  external: [/^@moe-route\//, 'rxjs', 'tsyringe', 'prom-client', /^@opentelemetry\//],
})
