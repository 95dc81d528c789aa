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
 * The device slots a GPU backend gives a store: the store decides which expert goes into which
 * slot, the backend moves the bytes and its kernels read the experts from the slots.
 */
export interface StoreDevice {
  /** Slots the backend allocated (the store's slot count). */
  readonly slots: number
  /** Bytes of one expert in the device layout (gate, up, down back to back). */
  readonly expertBytes: number
  /** Writes an expert's bytes (device layout, from `read`) into a slot. */
  upload(slot: number, expert: number, bytes: Uint8Array): void | Promise<void>
  /** The host bytes of one expert in the device layout: what a miss uploads. */
  read(expert: number): Promise<Uint8Array>
  /** Resolves when every upload issued so far has reached the device. */
  flush?(): Promise<void>
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
  /** Slots per device the store keeps (device pipelines allocate that many expert slots). */
  readonly slots?: number
  /**
   * Puts the store on a GPU backend's data path (device 0): misses are read and uploaded
   * through `device`, and the kernels read each expert from the slot {@link deviceSlot} names.
   * Call before the first `prepare`.
   */
  attachDevice?(device: StoreDevice): void
  /** The device slot holding `expert` now, or -1 (device pipelines bind it). */
  deviceSlot?(expert: number): number
  dispose?(): void | Promise<void>
}
export const ExpertStore = defineToken<ExpertStore>('ExpertStore')
