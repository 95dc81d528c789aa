/**
 * Helpers over core's {@link PlacementMap}: building one from an expert → device array,
 * checking one, and the per-device capacities every equal-size strategy uses.
 */
import { ErrorCodes, MoeError, type PlacementMap } from '@moe-route/core'

/**
 * Experts each device holds when E experts are spread evenly over D devices: ⌊E/D⌋ each,
 * and the first E mod D devices one more (the same sizes as core's contiguous placement).
 * With D > E the last D − E devices hold none.
 */
export function deviceCapacities(experts: number, devices: number): number[] {
  assertPositiveInt(experts, 'experts')
  assertPositiveInt(devices, 'devices')
  const base = Math.floor(experts / devices)
  const extra = experts % devices
  return Array.from({ length: devices }, (_, d) => base + (d < extra ? 1 : 0))
}

/** Builds a one-replica placement from `deviceOf[e]` (checked: every id in 0..devices−1). */
export function placementFromDevices(deviceOf: ArrayLike<number>, devices: number, strategy: string): PlacementMap {
  const replicas: number[][] = []
  for (let e = 0; e < deviceOf.length; e++) replicas.push([deviceOf[e]])
  const map: PlacementMap = { devices, experts: deviceOf.length, replicas, strategy }
  checkPlacement(map)
  return map
}

/** Device of each expert's primary (first) replica. */
export function primaryDevices(placement: PlacementMap): Int32Array {
  const out = new Int32Array(placement.experts)
  for (let e = 0; e < placement.experts; e++) out[e] = placement.replicas[e][0]
  return out
}

/** Expert ids on each device (an expert with several replicas on one device is listed once per replica). */
export function expertsByDevice(placement: PlacementMap): number[][] {
  const out: number[][] = Array.from({ length: placement.devices }, () => [])
  placement.replicas.forEach((reps, e) => reps.forEach((d) => out[d].push(e)))
  return out
}

/**
 * Throws MOE_ROUTE_ERR_INPUT_INVALID unless every expert has at least one replica and every
 * replica names a device in 0..devices−1.
 */
export function checkPlacement(placement: PlacementMap): void {
  const { devices, experts, replicas } = placement
  assertPositiveInt(devices, 'devices')
  if (replicas.length !== experts) {
    throw new MoeError(ErrorCodes.INPUT_INVALID, `placement lists ${replicas.length} experts, expected ${experts}`, { path: '/replicas' })
  }
  replicas.forEach((reps, e) => {
    if (reps.length === 0) throw new MoeError(ErrorCodes.INPUT_INVALID, `expert ${e} has no replica`, { path: `/replicas/${e}` })
    for (const d of reps) {
      if (!Number.isInteger(d) || d < 0 || d >= devices) {
        throw new MoeError(ErrorCodes.INPUT_INVALID, `expert ${e} is placed on device ${d}, outside 0..${devices - 1}`, { path: `/replicas/${e}` })
      }
    }
  })
}

/** Throws MOE_ROUTE_ERR_INPUT_INVALID unless `n` is a positive integer. */
export function assertPositiveInt(n: number, what: string): void {
  if (!Number.isInteger(n) || n < 1) {
    throw new MoeError(ErrorCodes.INPUT_INVALID, `${what} must be a positive integer, got ${n}`, { path: `/${what}` })
  }
}
