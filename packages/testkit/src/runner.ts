/**
 * Finding the test runner's `describe`/`it`: given ones first, then globals (vitest with
 * `globals: true`, jest, mocha), then `vitest` when running under it, then `node:test`.
 */

/** A test-suite function: `describe` of vitest, jest, mocha or node:test. */
export type DescribeFn = (name: string, fn: () => void) => unknown
/** A test function: `it` of vitest, jest, mocha or node:test. */
export type ItFn = (name: string, fn: () => unknown) => unknown

/** The two functions the conformance suite registers its tests with. */
export interface TestRunner {
  readonly describe: DescribeFn
  readonly it: ItFn
}

/** The runner from `given`, or from the globals; undefined when neither has one. */
export function runnerFromGlobals(given?: Partial<TestRunner>): TestRunner | undefined {
  if (given?.describe && given.it) return { describe: given.describe, it: given.it }
  const g = globalThis as { describe?: unknown; it?: unknown }
  if (typeof g.describe === 'function' && typeof g.it === 'function') {
    return { describe: given?.describe ?? (g.describe as DescribeFn), it: given?.it ?? (g.it as ItFn) }
  }
  return undefined
}

/**
 * Finds the runner: `given`, the globals, `vitest` (when `process.env.VITEST` is set), or
 * `node:test`. Resolves synchronously-available runners without awaiting, so tests are
 * registered during the test file's synchronous collection when possible.
 */
export function detectRunner(given?: Partial<TestRunner>): TestRunner | Promise<TestRunner> {
  const sync = runnerFromGlobals(given)
  if (sync) return sync
  const env = typeof process === 'object' ? process.env : {}
  const specifier = env.VITEST ? 'vitest' : 'node:test'
  return (import(/* @vite-ignore */ specifier) as Promise<Partial<TestRunner>>).then((mod) => {
    if (typeof mod.describe !== 'function' || typeof mod.it !== 'function') {
      throw new Error(`@moe-route/testkit: ${specifier} has no describe/it; pass { describe, it } from your test runner`)
    }
    return { describe: given?.describe ?? mod.describe, it: given?.it ?? mod.it }
  })
}
