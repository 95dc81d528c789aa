/**
 * Errors with stable codes. Every error moe-route throws on purpose is a {@link MoeError}
 * whose `code` is `MOE_ROUTE_ERR_<AREA>_<WHAT>`; `details` names what is wrong (a JSON
 * path, a plugin, a file, a record). Codes are part of the public API: never rename one.
 */

/** A stable error code. Packages may define their own codes with this prefix. */
export type MoeErrorCode = `MOE_ROUTE_ERR_${string}`

/** The codes core itself throws. */
export const ErrorCodes = {
  /** The configuration does not match the schema or is inconsistent; `details.issues` lists every problem. */
  CONFIG_INVALID: 'MOE_ROUTE_ERR_CONFIG_INVALID',
  /** A config file could not be read or parsed as JSON. */
  CONFIG_PARSE: 'MOE_ROUTE_ERR_CONFIG_PARSE',
  /** No plugin of that kind is registered under that name or npm package. */
  PLUGIN_UNKNOWN: 'MOE_ROUTE_ERR_PLUGIN_UNKNOWN',
  /** The object is not a moe-route plugin (missing brand, meta or create). */
  PLUGIN_INVALID: 'MOE_ROUTE_ERR_PLUGIN_INVALID',
  /** The plugin's supported core range does not include this core version. */
  PLUGIN_VERSION_MISMATCH: 'MOE_ROUTE_ERR_PLUGIN_VERSION_MISMATCH',
  /** Options failed the plugin's JSON Schema. */
  PLUGIN_OPTIONS_INVALID: 'MOE_ROUTE_ERR_PLUGIN_OPTIONS_INVALID',
  /** Another plugin with the same kind and name is already registered. */
  PLUGIN_DUPLICATE: 'MOE_ROUTE_ERR_PLUGIN_DUPLICATE',
  /** A plugin threw while creating or running a hook; `details.plugin` and `details.hook` say which. */
  PLUGIN_FAILED: 'MOE_ROUTE_ERR_PLUGIN_FAILED',
  /** A package could not be imported as a plugin. */
  PLUGIN_LOAD_FAILED: 'MOE_ROUTE_ERR_PLUGIN_LOAD_FAILED',
  /** An array has the wrong length for the declared shape. */
  SHAPE_MISMATCH: 'MOE_ROUTE_ERR_SHAPE_MISMATCH',
  /** Logits or scores contain NaN or infinity. */
  INPUT_NOT_FINITE: 'MOE_ROUTE_ERR_INPUT_NOT_FINITE',
  /** top-k is larger than the number of experts. */
  TOPK_EXCEEDS_EXPERTS: 'MOE_ROUTE_ERR_TOPK_EXCEEDS_EXPERTS',
  /** Any other malformed input (bad ids, negative sizes, missing fields). */
  INPUT_INVALID: 'MOE_ROUTE_ERR_INPUT_INVALID',
  /** A push-based source outran the bounded queue of the stream. */
  STREAM_OVERFLOW: 'MOE_ROUTE_ERR_STREAM_OVERFLOW',
  /** The stream was used after it was closed. */
  STREAM_CLOSED: 'MOE_ROUTE_ERR_STREAM_CLOSED',
  /** The requested backend cannot run here (no adapter, missing weights). */
  BACKEND_UNAVAILABLE: 'MOE_ROUTE_ERR_BACKEND_UNAVAILABLE',
  /** The GPU device was lost or ran out of memory. */
  BACKEND_DEVICE_LOST: 'MOE_ROUTE_ERR_BACKEND_DEVICE_LOST',
  /** A file does not exist or cannot be read. */
  FILE_NOT_FOUND: 'MOE_ROUTE_ERR_FILE_NOT_FOUND',
  /** A trace or tensor file is corrupt (truncated, bad header, wrong dtype, ids out of range, NaN). */
  TRACE_CORRUPT: 'MOE_ROUTE_ERR_TRACE_CORRUPT',
  /** A required service is not registered in the container. */
  SERVICE_MISSING: 'MOE_ROUTE_ERR_SERVICE_MISSING',
  /** Options of the metrics bridge (`@moe-route/telemetry`) are invalid: bucket bounds, limits, label names, a port. */
  TELEMETRY_OPTIONS_INVALID: 'MOE_ROUTE_ERR_TELEMETRY_OPTIONS_INVALID',
  /** The metrics server could not listen on the requested host and port (in use, not permitted, no such address). */
  TELEMETRY_LISTEN_FAILED: 'MOE_ROUTE_ERR_TELEMETRY_LISTEN_FAILED',
  /** A plugin package has no `moe-route` field in its package.json: its meta cannot be read without running it. */
  PLUGIN_MANIFEST_MISSING: 'MOE_ROUTE_ERR_PLUGIN_MANIFEST_MISSING',
  /** A plugin package's `moe-route` field is malformed (fields, sizes, an options schema that is not safe to compile). */
  PLUGIN_MANIFEST_INVALID: 'MOE_ROUTE_ERR_PLUGIN_MANIFEST_INVALID',
  /** The plugins a module exports differ from what its package.json `moe-route` field declares; `details.field` says where. */
  PLUGIN_MANIFEST_MISMATCH: 'MOE_ROUTE_ERR_PLUGIN_MANIFEST_MISMATCH',
  /** A plugin reference was refused before anything ran: not a package name, a module path that leaves its package, or a local file without the opt-in or outside the project. */
  PLUGIN_PATH_REFUSED: 'MOE_ROUTE_ERR_PLUGIN_PATH_REFUSED',
  /** A plugin's import or hook did not finish within its time limit; `details.plugin` and `details.hook` say which. */
  PLUGIN_TIMEOUT: 'MOE_ROUTE_ERR_PLUGIN_TIMEOUT',
  /** A size (experts, hidden, tokens, slots, a memory estimate) exceeds what moe-route will allocate; the message carries the estimate. */
  SIZE_LIMIT: 'MOE_ROUTE_ERR_SIZE_LIMIT',
  /** A trace, workload or input holds nothing to process (no records, no batches, empty stdin). */
  INPUT_EMPTY: 'MOE_ROUTE_ERR_INPUT_EMPTY',
  /** An optional package that a command or option needs is not installed; the message names the `npm install` that adds it. */
  PACKAGE_MISSING: 'MOE_ROUTE_ERR_PACKAGE_MISSING',
  /** Two run reports differ beyond the stated tolerance (`moe-route compare`); `details.differences` lists each one. */
  COMPARE_MISMATCH: 'MOE_ROUTE_ERR_COMPARE_MISMATCH',
} as const satisfies Record<string, MoeErrorCode>

/** Structured context carried by a {@link MoeError}. */
export interface MoeErrorDetails {
  /** JSON pointer of the offending config field, e.g. `/policies/0/options/capacityFactor`. */
  readonly path?: string
  /** Short name of the plugin involved. */
  readonly plugin?: string
  /** Hook that failed (`create`, `apply`, `route`, ...). */
  readonly hook?: string
  /** File involved. */
  readonly file?: string
  /** Record (line, token, tensor) within the file. */
  readonly record?: string | number
  /** Every problem found, when validation collects more than one. */
  readonly issues?: readonly MoeIssue[]
  readonly [key: string]: unknown
}

/** One validation problem: where and what. */
export interface MoeIssue {
  readonly code: MoeErrorCode
  readonly path: string
  readonly message: string
  readonly plugin?: string
}

/** The error class of moe-route. `instanceof` works across ESM/CJS copies via {@link isMoeError}. */
export class MoeError extends Error {
  readonly code: MoeErrorCode
  readonly details: MoeErrorDetails
  constructor(code: MoeErrorCode, message: string, details: MoeErrorDetails = {}, options?: { cause?: unknown }) {
    super(message, options)
    this.name = 'MoeError'
    this.code = code
    this.details = details
  }
  /** `CODE: message` — what the CLI prints. */
  override toString(): string {
    return `${this.code}: ${this.message}`
  }
  toJSON(): { code: string; message: string; details: MoeErrorDetails } {
    return { code: this.code, message: this.message, details: this.details }
  }
}

const BRAND = Symbol.for('@moe-route/core:error')
Object.defineProperty(MoeError.prototype, BRAND, { value: true })

/** True for a MoeError from any copy of core (ESM or CJS). */
export function isMoeError(e: unknown): e is MoeError {
  return typeof e === 'object' && e !== null && (e as Record<symbol, unknown>)[BRAND] === true
}
