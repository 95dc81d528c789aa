/**
 * What every CLI command receives. Commands write through `out`/`err` (never console) so
 * tests can capture them, and throw MoeError for bad input: main() prints `CODE: message`
 * to stderr and exits non-zero.
 */
import { readFileSync } from 'node:fs'
import { ErrorCodes, MoeError } from '@moe-route/core'

export interface CliContext {
  /** Write a line (or text) to stdout. */
  out(text: string): void
  /** Write a line (or text) to stderr. */
  err(text: string): void
  /** True when stderr is a terminal (progress bars go there only then). */
  readonly interactive: boolean
  /** Working directory for relative paths. */
  readonly cwd: string
}

/** Reads and parses a JSON file; errors name the file and carry stable codes. */
export function readJsonFile(path: string): unknown {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (cause) {
    throw new MoeError(ErrorCodes.FILE_NOT_FOUND, `cannot read ${path}: ${(cause as Error).message}`, { file: path }, { cause })
  }
  try {
    return JSON.parse(text)
  } catch (cause) {
    throw new MoeError(ErrorCodes.CONFIG_PARSE, `${path} is not valid JSON: ${(cause as Error).message}`, { file: path }, { cause })
  }
}

/** Parses an integer option, or throws MOE_ROUTE_ERR_INPUT_INVALID naming the flag. */
export function intOption(value: string | undefined, flag: string, min = 0): number | undefined {
  if (value === undefined) return undefined
  const n = Number(value)
  if (!Number.isInteger(n) || n < min) {
    throw new MoeError(ErrorCodes.INPUT_INVALID, `${flag} must be an integer ≥ ${min}, got '${value}'`, { path: flag })
  }
  return n
}
