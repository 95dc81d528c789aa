/**
 * What every CLI command receives. Commands write through `out`/`err` (never console) so
 * tests can capture them, and throw MoeError for bad input: main() prints `CODE: message`
 * to stderr and exits non-zero.
 */
import { readFileSync } from 'node:fs'
import { ErrorCodes, MoeError } from '@moe-route/core'
import { parse as parseJsonc, printParseErrorCode, type ParseError } from 'jsonc-parser'

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

/**
 * Reads a config file: JSON with line and block comments and trailing commas allowed (JSONC,
 * as VS Code reads its settings; parsed by Microsoft's jsonc-parser). Errors name the file,
 * line and column.
 */
export function readConfigFile(path: string): unknown {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (cause) {
    throw new MoeError(ErrorCodes.FILE_NOT_FOUND, `cannot read ${path}: ${(cause as Error).message}`, { file: path }, { cause })
  }
  const errors: ParseError[] = []
  const value: unknown = parseJsonc(text, errors, { allowTrailingComma: true, disallowComments: false, allowEmptyContent: false })
  if (errors.length > 0) {
    const e = errors[0]
    const before = text.slice(0, e.offset).split('\n')
    const where = `line ${before.length}, column ${before[before.length - 1].length + 1}`
    throw new MoeError(ErrorCodes.CONFIG_PARSE, `${path} is not valid JSON (comments allowed): ${printParseErrorCode(e.error)} at ${where}`, { file: path, record: where })
  }
  return value
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
