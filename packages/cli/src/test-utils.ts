/** Test helpers (not exported from the package): the CLI run in-process in a scratch folder. */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { CliContext } from './context.js'
import { main } from './main.js'

/** A CLI run: exit status and what it wrote, lines joined. */
export interface CliResult {
  readonly code: number
  readonly out: string
  readonly err: string
}

/**
 * A scratch folder (`prefix` names it under the OS temp dir) with `file(name, content)` —
 * strings written as they are, anything else as JSON — and `cli(...argv)`, which runs `main`
 * with that folder as its working directory and captures stdout and stderr.
 */
export function cliHarness(prefix: string): { dir: string; file(name: string, content: unknown): string; cli(...argv: string[]): Promise<CliResult> } {
  const dir = mkdtempSync(join(tmpdir(), prefix))
  const file = (name: string, content: unknown): string => {
    const p = join(dir, name)
    writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content))
    return p
  }
  const cli = async (...argv: string[]): Promise<CliResult> => {
    const out: string[] = []
    const err: string[] = []
    const ctx: CliContext = { out: (s) => out.push(s), err: (s) => err.push(s), interactive: false, cwd: dir }
    const code = await main(argv, ctx)
    return { code, out: out.join('\n'), err: err.join('\n') }
  }
  return { dir, file, cli }
}
