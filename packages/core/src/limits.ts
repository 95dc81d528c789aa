/**
 * The sizes moe-route will allocate for, in one place: the config schema, the trace and record
 * readers, the CLI flags and the plugin loader all read these bounds, so no size from a file
 * or a flag is trusted before it is checked. Memory is estimated before anything large is
 * allocated, and a run that would not fit is refused with the estimate.
 */
import { ErrorCodes, MoeError } from './errors.js'
import type { ModelShape } from './types.js'

/** Largest number of experts E a config, trace or record may declare (also the bound of an E inferred from ids). */
export const MAX_EXPERTS = 65_536
/** Largest k (experts per token). */
export const MAX_TOP_K = 256
/** Largest hidden size H. */
export const MAX_HIDDEN = 65_536
/** Largest expert intermediate size I. */
export const MAX_INTERMEDIATE = 262_144
/** Largest number of devices under expert parallelism. */
export const MAX_DEVICES = 65_536
/** Largest number of tokens in one batch. */
export const MAX_TOKENS_PER_BATCH = 1 << 20
/** Largest number of batches a run or simulation is asked for (a count, not memory: time is the user's). */
export const MAX_BATCHES = 2 ** 31 - 1
/** Largest bounded queue of a token stream (batches waiting). */
export const MAX_STREAM_CAPACITY = 4096
/** Largest number of batches in flight. */
export const MAX_IN_FLIGHT = 1024
/** Largest layer index a config or trace option may name. */
export const MAX_LAYER = 1 << 20
/**
 * Largest capacity factor γ a capacity policy accepts. Any γ ≥ E/k (at most 65,536) already
 * keeps every pair, and with this bound γ·k·T/E stays an exact double (no overflow to Infinity).
 */
export const MAX_CAPACITY_FACTOR = 1e6
/** Default time limit of a plugin's import and of each of its hooks, in milliseconds. */
export const DEFAULT_PLUGIN_TIMEOUT_MS = 10_000
/** Largest time limit a config may set for plugin calls (10 minutes). */
export const MAX_PLUGIN_TIMEOUT_MS = 600_000

/** One part of a {@link MemoryEstimate}. */
export interface MemoryPart {
  readonly what: string
  readonly bytes: number
  /** How it was computed, e.g. `E·(3·H·I + H)·4 B`. */
  readonly formula: string
}

/** Host memory a run needs, by part. */
export interface MemoryEstimate {
  readonly bytes: number
  readonly parts: readonly MemoryPart[]
}

/** What {@link estimateRunMemory} needs besides the model shape. */
export interface RunMemoryInput {
  /** Tokens per batch T. */
  readonly tokensPerBatch: number
  /** Batches held at once (queued plus in flight). */
  readonly batchesHeld: number
  /** True when the layer's weights live on the host in f32 (the CPU backend). */
  readonly hostWeights: boolean
}

/**
 * Estimates the host memory of running a layer: f32 weights when they live on the host,
 * `E·(3·H·I + H)·4` bytes, plus per batch held `T·(2·H + 3·E + k·(2·I + 16))·4` bytes (hidden
 * states in and out, logits, scores and weights, routed pairs and the expert intermediates).
 * Cheap and conservative: meant to refuse what cannot fit before allocating, not to predict.
 * @example
 * const m = estimateRunMemory(model, { tokensPerBatch: 512, batchesHeld: 5, hostWeights: true })
 * checkMemory(m, 8 * 2 ** 30, 'run')
 */
export function estimateRunMemory(model: Pick<ModelShape, 'experts' | 'topK' | 'hidden' | 'intermediate'>, input: RunMemoryInput): MemoryEstimate {
  const { experts: E, topK: k, hidden: H, intermediate: I } = model
  const T = input.tokensPerBatch
  const parts: MemoryPart[] = []
  if (input.hostWeights) parts.push({ what: 'layer weights (f32)', bytes: E * (3 * H * I + H) * 4, formula: 'E·(3·H·I + H)·4 B' })
  parts.push({ what: `${input.batchesHeld} batch(es) held`, bytes: input.batchesHeld * T * (2 * H + 3 * E + k * (2 * I + 16)) * 4, formula: 'batches·T·(2·H + 3·E + k·(2·I + 16))·4 B' })
  return { bytes: parts.reduce((a, p) => a + p.bytes, 0), parts }
}

/**
 * Throws `MOE_ROUTE_ERR_SIZE_LIMIT` with the estimate when it exceeds the budget.
 * @param what What would be allocated (for the message), e.g. `run of config.json`.
 * @param path JSON path or flag to blame (default `/model`).
 */
export function checkMemory(estimate: MemoryEstimate, budgetBytes: number, what: string, path = '/model'): void {
  if (estimate.bytes <= budgetBytes) return
  const parts = estimate.parts.map((p) => `${p.what} ${formatBytes(p.bytes)} (${p.formula})`).join(' + ')
  throw new MoeError(
    ErrorCodes.SIZE_LIMIT,
    `${what} needs about ${formatBytes(estimate.bytes)} of memory (${parts}), more than the ${formatBytes(budgetBytes)} available; use smaller sizes`,
    { path, estimateBytes: estimate.bytes, budgetBytes },
  )
}

/**
 * Throws `MOE_ROUTE_ERR_SIZE_LIMIT` unless `value` is an integer in `[min, max]`
 * (`MOE_ROUTE_ERR_INPUT_INVALID` when it is not an integer at all).
 */
export function checkSize(value: unknown, what: string, max: number, min = 1, path?: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min) {
    throw new MoeError(ErrorCodes.INPUT_INVALID, `${what} must be an integer ≥ ${min}, got ${JSON.stringify(value)}`, path ? { path } : {})
  }
  if (value > max) throw new MoeError(ErrorCodes.SIZE_LIMIT, `${what} is ${value}, more than the largest supported (${max})`, path ? { path } : {})
  return value
}

/** `1.5 GiB`, `512 B`: bytes in binary units for messages. */
export function formatBytes(bytes: number): string {
  if (!Number.isFinite(bytes)) return `${bytes} B`
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB', 'EiB']
  let v = bytes
  let u = 0
  while (v >= 1024 && u < units.length - 1) {
    v /= 1024
    u++
  }
  return u === 0 ? `${v} B` : `${v.toFixed(1)} ${units[u]}`
}
