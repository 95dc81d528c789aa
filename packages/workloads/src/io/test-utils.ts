/** Test helpers (not exported from the package). */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { isMoeError } from '@moe-route/core'
import { expect } from 'vitest'

/** A fresh temp dir with a `file(name)` helper and `cleanup()`. */
export function tempDir(): { dir: string; file(name: string): string; cleanup(): void } {
  const dir = mkdtempSync(join(tmpdir(), 'moe-workloads-'))
  return { dir, file: (name) => join(dir, name), cleanup: () => rmSync(dir, { recursive: true, force: true }) }
}

/** Awaits `p`, expects a MoeError with `code`, a message matching every pattern, and returns it. */
export async function expectMoeError(p: Promise<unknown> | (() => unknown), code: string, ...patterns: RegExp[]) {
  let error: unknown
  try {
    await (typeof p === 'function' ? p() : p)
  } catch (e) {
    error = e
  }
  expect(isMoeError(error), `expected a MoeError, got ${String(error)}`).toBe(true)
  const err = error as { code: string; message: string; details: Record<string, unknown> }
  expect(err.code).toBe(code)
  for (const re of patterns) expect(err.message).toMatch(re)
  return err
}
