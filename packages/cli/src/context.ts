/**
 * What every CLI command receives. Commands write through `out`/`err` (never console) so
 * tests can capture them, and throw MoeError for bad input: main() prints `CODE: message`
 * to stderr and exits non-zero.
 */
import { ErrorCodes, MAX_BATCHES, MoeError } from '@moe-route/core'
import type { PluginSecurity } from '@moe-route/core/node'

export interface CliContext {
  /** Write a line (or text) to stdout. */
  out(text: string): void
  /** Write a line (or text) to stderr. */
  err(text: string): void
  /** True when stderr is a terminal (progress bars go there only then). */
  readonly interactive: boolean
  /** Working directory for relative paths. */
  readonly cwd: string
  /** How plugin packages may run (set from the global flags; see @moe-route/core/node). */
  readonly security?: PluginSecurity
}

/**
 * Parses an integer option within `[min, max]`: not an integer is MOE_ROUTE_ERR_INPUT_INVALID,
 * above `max` (default 2^31 − 1) MOE_ROUTE_ERR_SIZE_LIMIT, both naming the flag.
 */
export function intOption(value: string | undefined, flag: string, min = 0, max = MAX_BATCHES): number | undefined {
  if (value === undefined) return undefined
  const n = /^\s*[+-]?\d+\s*$/.test(value) ? Number(value) : NaN
  if (!Number.isSafeInteger(n) || n < min) {
    throw new MoeError(ErrorCodes.INPUT_INVALID, `${flag} must be an integer ≥ ${min}, got '${value}'`, { path: flag })
  }
  if (n > max) throw new MoeError(ErrorCodes.SIZE_LIMIT, `${flag} is ${n}, more than the largest supported (${max})`, { path: flag })
  return n
}
