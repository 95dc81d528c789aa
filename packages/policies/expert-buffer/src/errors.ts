/**
 * Error codes of @moe-route/policy-expert-buffer. Every error this package throws on purpose is
 * a core `MoeError` with one of these codes (or a core code such as `TRACE_CORRUPT` for a
 * corrupt tensor file). Codes are public API: they are never renamed.
 */
import { MoeError, type MoeErrorCode, type MoeErrorDetails } from '@moe-route/core'

/** The codes this package throws. */
export const StoreErrorCodes = {
  /** `slots` is not an integer in 1 … (experts on the device). */
  STORE_SLOTS_INVALID: 'MOE_ROUTE_ERR_STORE_SLOTS_INVALID',
  /** An expert id (in a request, a trace or a placement) is not in 0 … E-1. */
  STORE_EXPERT_UNKNOWN: 'MOE_ROUTE_ERR_STORE_EXPERT_UNKNOWN',
  /** No eviction policy of that name is known. */
  STORE_POLICY_UNKNOWN: 'MOE_ROUTE_ERR_STORE_POLICY_UNKNOWN',
  /** Expert weights have the wrong size, dtype or are missing from the weight source. */
  STORE_WEIGHTS_INVALID: 'MOE_ROUTE_ERR_STORE_WEIGHTS_INVALID',
  /** Loading an expert from the weight source failed (the resident set is unchanged). */
  STORE_LOAD_FAILED: 'MOE_ROUTE_ERR_STORE_LOAD_FAILED',
  /** The store was used after `dispose()`. */
  STORE_DISPOSED: 'MOE_ROUTE_ERR_STORE_DISPOSED',
  /** A cache trace is malformed (not a list of batches, bad layer or device fields). */
  STORE_TRACE_INVALID: 'MOE_ROUTE_ERR_STORE_TRACE_INVALID',
  /** Belady's MIN was asked for without a known future. */
  STORE_FUTURE_REQUIRED: 'MOE_ROUTE_ERR_STORE_FUTURE_REQUIRED',
} as const satisfies Record<string, MoeErrorCode>

/** Shorthand for `new MoeError(code, message, details)`. */
export function storeError(code: MoeErrorCode, message: string, details: MoeErrorDetails = {}, cause?: unknown): MoeError {
  return new MoeError(code, message, { plugin: 'expert-buffer', ...details }, cause === undefined ? undefined : { cause })
}

/** Throws STORE_SLOTS_INVALID unless `slots` is an integer in 1 … `max`. */
export function checkSlots(slots: number, max: number, path = 'slots'): void {
  if (!Number.isInteger(slots) || slots < 1 || slots > max) {
    throw storeError(
      StoreErrorCodes.STORE_SLOTS_INVALID,
      `${path} must be an integer in 1 … ${max} (experts per device), got ${String(slots)}`,
      { path, slots, max },
    )
  }
}

/** Throws STORE_EXPERT_UNKNOWN unless `expert` is an integer in 0 … experts-1. */
export function checkExpert(expert: number, experts: number, where: string): void {
  if (!Number.isInteger(expert) || expert < 0 || expert >= experts) {
    throw storeError(
      StoreErrorCodes.STORE_EXPERT_UNKNOWN,
      `${where}: expert id ${String(expert)} is not in 0 … ${experts - 1}`,
      { record: where, expert, experts },
    )
  }
}
