import { defineToken } from '../tokens.js'
import type { StoreTelemetry } from '../types.js'

/** What the store is told before a batch runs. */
export interface StoreRequest {
  readonly batchId: number
  /** Experts with at least one row in this batch, ascending (the order they execute). */
  readonly active: readonly number[]
  /** Rows per expert in this batch (length E). */
  readonly counts: Int32Array
  /** Device the batch runs on. */
  readonly device?: number
}

/**
 * Keeps a bounded set of experts resident on each device, backed by host memory.
 * `prepare` makes the active experts resident (hits are free, misses upload).
 */
export interface ExpertStore {
  readonly name: string
  prepare(request: StoreRequest): StoreTelemetry | Promise<StoreTelemetry>
  /** Experts resident now, per device. */
  resident(device?: number): readonly number[]
  dispose?(): void | Promise<void>
}
export const ExpertStore = defineToken<ExpertStore>('ExpertStore')
