/**
 * Error helpers for trace and tensor files. Every problem with a file is a core `MoeError`
 * whose details name the file, the record (line, row, tensor) and the problem.
 */
import { ErrorCodes, MoeError } from '@moe-route/core'

/**
 * A `MOE_ROUTE_ERR_TRACE_CORRUPT` error: `<file>: <record>: <problem>`.
 * @param file path of the file as the caller gave it
 * @param record where in the file (`line 12`, `tensor "logits"`, `header`, a row number)
 * @param problem what is wrong, in words
 */
export function corrupt(file: string, record: string | number, problem: string, cause?: unknown): MoeError {
  const where = typeof record === 'number' ? `record ${record}` : record
  return new MoeError(ErrorCodes.TRACE_CORRUPT, `${file}: ${where}: ${problem}`, { file, record, problem }, cause === undefined ? undefined : { cause })
}

/** A `MOE_ROUTE_ERR_FILE_NOT_FOUND` error for a file that cannot be opened. */
export function notFound(file: string, cause: unknown): MoeError {
  const reason = cause instanceof Error ? cause.message : String(cause)
  return new MoeError(ErrorCodes.FILE_NOT_FOUND, `cannot open ${file}: ${reason}`, { file }, { cause })
}

/** A `MOE_ROUTE_ERR_INPUT_INVALID` error for bad arguments (not bad files). */
export function invalid(message: string, details: Record<string, unknown> = {}): MoeError {
  return new MoeError(ErrorCodes.INPUT_INVALID, message, details)
}

/** Error codes the workloads package adds to core's (same `MOE_ROUTE_ERR_` prefix). */
export const WorkloadErrorCodes = {
  /**
   * A pickle (inside a `.pt` file) names a callable or opcode outside the tensor-rebuild
   * allow-list; nothing it names was imported or run. `details.global` names it.
   */
  TRACE_PICKLE_REFUSED: 'MOE_ROUTE_ERR_TRACE_PICKLE_REFUSED',
} as const

/**
 * A `MOE_ROUTE_ERR_TRACE_PICKLE_REFUSED` error: the file asked the unpickler for something
 * outside its allow-list (a global such as `os system`, an object-building opcode).
 */
export function refused(file: string, record: string, problem: string, extra: Record<string, unknown> = {}): MoeError {
  return new MoeError(WorkloadErrorCodes.TRACE_PICKLE_REFUSED, `${file}: ${record}: ${problem}`, { file, record, problem, ...extra })
}
