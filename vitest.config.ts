import { defineConfig } from 'vitest/config'

// One vitest run for the whole monorepo. Packages are resolved through the
// "@moe-route/source" export condition, so unit tests run against src/ without a build;
// test/dist imports the built dist/ files explicitly.
const conditions = ['@moe-route/source', 'import', 'module', 'node', 'default']

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions, externalConditions: ['@moe-route/source'] } },
  test: {
    include: [
      'packages/**/src/**/*.test.ts',
      'test/**/*.test.ts',
      'examples/**/*.test.ts',
    ],
    exclude: ['**/node_modules/**', '**/dist/**'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    maxWorkers: 2,
  },
})
