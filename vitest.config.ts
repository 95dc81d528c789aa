import { defineConfig } from 'vitest/config'

// One vitest run for the whole monorepo. Packages are resolved through the
// "@moe-route/source" export condition, so unit tests run against src/ without a build;
// test/dist imports the built dist/ files explicitly. No bundler-only "module" condition:
// vitest hands these conditions to Node (--conditions), where `require()` of a package with a
// "module" build (@opentelemetry/api, required by prom-client) would load extensionless ESM.
const conditions = ['@moe-route/source', 'import', 'node', 'default']

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ['@moe-route/source'] } },
  test: {
    include: [
      'packages/**/src/**/*.test.ts',
      'test/**/*.test.ts',
      'examples/**/*.test.ts',
    ],
    // Build output only: `**/dist/**` would also exclude test/dist, the checks of the built packages.
    exclude: ['**/node_modules/**', '{packages,examples}/**/dist/**'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
  },
})
