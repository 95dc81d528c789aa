/**
 * Which device hosts which expert, as the store and the simulator need it: an expert→device
 * array. The default is contiguous blocks (experts 0…E/D-1 on device 0, and so on), the same
 * split as core's contiguous placement.
 */
import { StoreErrorCodes, checkExpert, storeError } from '../errors.js'

/** Expert→device map plus each device's experts (ascending). */
export interface DeviceSplit {
  readonly devices: number
  /** `deviceOf[e]` is the device hosting expert e. */
  readonly deviceOf: Int32Array
  /** `local[d]` lists device d's experts, ascending. */
  readonly local: readonly (readonly number[])[]
}

/**
 * Builds the split. `placement[e]` is expert e's device (length E); without it experts are
 * dealt contiguously, `floor(e·D/E)`.
 */
export function splitExperts(experts: number, devices = 1, placement?: ArrayLike<number>): DeviceSplit {
  if (!Number.isInteger(devices) || devices < 1 || devices > experts) {
    throw storeError(StoreErrorCodes.STORE_SLOTS_INVALID, `devices must be an integer in 1 … ${experts} (experts), got ${String(devices)}`, { path: 'devices' })
  }
  const deviceOf = new Int32Array(experts)
  if (placement) {
    if (placement.length !== experts) {
      throw storeError(StoreErrorCodes.STORE_EXPERT_UNKNOWN, `placement has ${placement.length} entries, expected one per expert (${experts})`, { path: 'placement' })
    }
    for (let e = 0; e < experts; e++) {
      const d = placement[e]!
      if (!Number.isInteger(d) || d < 0 || d >= devices) {
        throw storeError(StoreErrorCodes.STORE_EXPERT_UNKNOWN, `placement[${e}] = ${String(d)} is not a device in 0 … ${devices - 1}`, { path: `placement/${e}` })
      }
      deviceOf[e] = d
    }
  } else {
    for (let e = 0; e < experts; e++) deviceOf[e] = Math.floor((e * devices) / experts)
  }
  const local: number[][] = Array.from({ length: devices }, () => [])
  for (let e = 0; e < experts; e++) local[deviceOf[e]!]!.push(e)
  return { devices, deviceOf, local }
}

/** Splits a batch's active experts by device (each list ascending). */
export function activeByDevice(active: readonly number[], split: DeviceSplit, where = 'request'): number[][] {
  const out: number[][] = Array.from({ length: split.devices }, () => [])
  for (const e of active) {
    checkExpert(e, split.deviceOf.length, where)
    out[split.deviceOf[e]!]!.push(e)
  }
  for (const l of out) l.sort((a, b) => a - b)
  return out
}
