/** The default placement: E experts over D devices in contiguous blocks. */
import { ErrorCodes, MoeError } from '../errors.js'
import { definePlacement } from '../plugin/define.js'
import { CORE_VERSION } from '../version.js'
import type { PlacementMap } from '../placement/placement.js'

/**
 * Device d holds experts d·E/D … (d+1)·E/D − 1 (when D does not divide E, the first
 * E mod D devices hold one more). With D > E, experts go to devices 0..E−1.
 */
export function contiguousPlacement(experts: number, devices: number): PlacementMap {
  if (!Number.isInteger(devices) || devices < 1) {
    throw new MoeError(ErrorCodes.INPUT_INVALID, `devices must be a positive integer, got ${devices}`, { path: '/devices' })
  }
  const replicas: number[][] = []
  const base = Math.floor(experts / devices)
  const extra = experts % devices
  let d = 0
  let onDevice = 0
  for (let e = 0; e < experts; e++) {
    const size = base + (d < extra ? 1 : 0)
    if (size === 0 || onDevice >= size) {
      d++
      onDevice = 0
    }
    replicas.push([Math.min(d, devices - 1)])
    onDevice++
  }
  return { devices, experts, replicas, strategy: 'contiguous' }
}

/** Experts whose primary replica is on `device`. */
export function expertsOnDevice(placement: PlacementMap, device: number): number[] {
  const out: number[] = []
  placement.replicas.forEach((r, e) => {
    if (r.includes(device)) out.push(e)
  })
  return out
}

/** The `contiguous` placement plugin (the default). */
export const contiguousPlacementPlugin = definePlacement<Record<string, never>>({
  meta: {
    name: 'contiguous',
    package: '@moe-route/core',
    version: CORE_VERSION,
    core: `^${CORE_VERSION}`,
    description: 'Experts in contiguous blocks: device d holds d·E/D … (d+1)·E/D − 1',
    schema: { type: 'object', properties: {}, additionalProperties: false },
    defaultOptions: {},
  },
  create() {
    return { name: 'contiguous', place: ({ experts, devices }) => contiguousPlacement(experts, devices) }
  },
})
