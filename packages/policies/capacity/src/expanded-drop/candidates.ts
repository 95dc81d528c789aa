/** The candidate experts of each token under Expanded Drop (top-k ∪ local / top-M / all). */
import { ErrorCodes, MoeError, scoreRow, topKIndices, type PlacementMap, type Routing } from '@moe-route/core'
import { PolicyErrorCodes } from '../shared/index.js'
import type { ExpandedDropOptions } from './expanded-drop.schema.js'

/**
 * A function giving the extra candidates of a token (beyond its input pairs). The result
 * may repeat the token's top-k experts; callers de-duplicate.
 */
export type ExtraCandidates = (token: number) => ArrayLike<number>

/**
 * Resolves the extra candidates for a routing. Throws MOE_ROUTE_ERR_POLICY_PLACEMENT_REQUIRED
 * for `local` without `localExperts` and without a placement over more than one device, and
 * MOE_ROUTE_ERR_POLICY_LOCAL_EXPERTS_INVALID for ids outside 0..E−1 or a missing device entry.
 */
export function extraCandidates(
  routing: Routing,
  options: Pick<ExpandedDropOptions, 'candidates' | 'overselectionRatio' | 'localExperts'>,
  placement: PlacementMap | undefined,
  policy: string,
): ExtraCandidates {
  const E = routing.experts
  if (options.candidates === 'all') {
    const all = Int32Array.from({ length: E }, (_, e) => e)
    return () => all
  }
  if (options.candidates === 'global-topM') {
    const M = Math.min(E, Math.ceil(routing.topK * options.overselectionRatio - 1e-9))
    const out = new Int32Array(M)
    const row = new Float32Array(E)
    return (t) => {
      topKIndices(scoreRow(routing, t, row), 0, E, M, out)
      return out
    }
  }
  const { lists, flat } = localSets(E, options.localExperts, placement, policy)
  const src = routing.sourceDevice
  return (t) => {
    const d = src ? src[t] : 0
    const set = flat ? lists[0] : lists[d]
    if (!set) {
      throw new MoeError(PolicyErrorCodes.LOCAL_EXPERTS_INVALID, `${policy}: localExperts has no entry for device ${d} (token ${t})`, {
        plugin: policy,
        hook: 'apply',
        record: t,
      })
    }
    return set
  }
}

/** Local expert lists per device, or one list for every token when `localExperts` is flat. */
function localSets(
  experts: number,
  localExperts: ExpandedDropOptions['localExperts'],
  placement: PlacementMap | undefined,
  policy: string,
): { lists: Int32Array[]; flat: boolean } {
  if (localExperts !== null) {
    const flat = !(localExperts.length > 0 && Array.isArray(localExperts[0]))
    const lists = flat ? [localExperts as number[]] : (localExperts as number[][])
    for (const list of lists) {
      for (const e of list) {
        if (!Number.isInteger(e) || e < 0 || e >= experts) {
          throw new MoeError(PolicyErrorCodes.LOCAL_EXPERTS_INVALID, `${policy}: localExperts names expert ${e}, outside 0..${experts - 1}`, {
            plugin: policy,
            path: '/options/localExperts',
          })
        }
      }
    }
    return { lists: lists.map((l) => Int32Array.from(l)), flat }
  }
  assertPlacement(placement, policy)
  if (placement.experts !== experts) {
    throw new MoeError(ErrorCodes.INPUT_INVALID, `${policy}: the placement covers ${placement.experts} experts but the routing has ${experts}`, {
      plugin: policy,
    })
  }
  const lists: number[][] = Array.from({ length: placement.devices }, () => [])
  placement.replicas.forEach((devices, e) => {
    for (const d of new Set(devices)) lists[d].push(e)
  })
  return { lists: lists.map((l) => Int32Array.from(l)), flat: false }
}

/** Throws MOE_ROUTE_ERR_POLICY_PLACEMENT_REQUIRED unless the placement spans more than one device. */
export function assertPlacement(placement: PlacementMap | undefined, policy: string): asserts placement is PlacementMap {
  if (!placement || placement.devices <= 1) throw placementRequired(policy, placement?.devices)
}

/** The error of `candidates: 'local'` without a multi-device placement and without `localExperts`. */
export function placementRequired(policy: string, devices: number | undefined): MoeError {
  return new MoeError(
    PolicyErrorCodes.PLACEMENT_REQUIRED,
    `${policy}: candidates 'local' needs a placement over more than one device (config "devices" > 1) or the localExperts option; ` +
      `with one device every expert is local, which is candidates 'all'`,
    { plugin: policy, path: '/options/candidates', devices: devices ?? null },
  )
}
