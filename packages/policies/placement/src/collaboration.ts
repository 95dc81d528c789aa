/**
 * Collaboration placement: Occult's expert placement rescheduling (Algorithm 1).
 * [SECONDARY] — from a third-party summary of arXiv 2505.13345 (SPEC C.5, E.15); the
 * official code was not available. Interpretation choices are listed on the function.
 */
import { ErrorCodes, MoeError, type PlacementMap } from '@moe-route/core'
import { deviceCapacities, placementFromDevices } from './placement-map.js'

/** Inputs of {@link collaborationPlacement}. */
export interface CollaborationInput {
  readonly experts: number
  readonly devices: number
  /** experts × experts co-activation counts (ordered pairs; the diagonal is ignored). */
  readonly coactivation: readonly (readonly number[])[]
}

/**
 * Puts experts that are often chosen by the same token on the same device, so each token is
 * sent to fewer devices (lower C_T). Steps, with P = (M + Mᵀ) normalised by its maximum:
 * 1. device 0 is seeded with the most-collaborating pair (one expert if a device holds one);
 * 2. each next device is seeded with the unplaced expert of *smallest* mean collaboration to
 *    all experts placed so far (farthest-point sampling);
 * 3. devices are then filled in order, each repeatedly taking the unplaced expert of
 *    *largest* mean collaboration to the experts already on it, until it holds E/D.
 * Interpretations [INFERRED]: seeds are all chosen before filling; P is symmetrised; ties
 * go to the lower expert id.
 */
export function collaborationPlacement(input: CollaborationInput): PlacementMap {
  const { experts: E, devices: D, coactivation } = input
  const cap = deviceCapacities(E, D)
  if (coactivation.length !== E || coactivation.some((r) => r.length !== E)) {
    throw new MoeError(ErrorCodes.SHAPE_MISMATCH, `co-activation matrix must be ${E}×${E}`, { path: '/coactivation' })
  }
  const P = symmetricNormalised(coactivation)
  const deviceOf = new Int32Array(E).fill(-1)
  const members: number[][] = Array.from({ length: D }, () => [])
  const placed: number[] = []
  const put = (e: number, d: number) => {
    deviceOf[e] = d
    members[d].push(e)
    placed.push(e)
  }
  const used = cap.filter((c) => c > 0).length
  // 1. Seed device 0 with the strongest pair.
  if (cap[0] >= 2) {
    let bi = 0
    let bj = 1
    for (let i = 0; i < E; i++) for (let j = i + 1; j < E; j++) if (P[i][j] > P[bi][bj]) [bi, bj] = [i, j]
    put(bi, 0)
    put(bj, 0)
  } else {
    let best = 0
    let bestSum = -1
    for (let i = 0; i < E; i++) {
      const s = P[i].reduce((a, v) => a + v, 0)
      if (s > bestSum) [best, bestSum] = [i, s]
    }
    put(best, 0)
  }
  // 2. Farthest-point seeds for the other devices.
  for (let d = 1; d < used; d++) {
    let best = -1
    let bestScore = Infinity
    for (let e = 0; e < E; e++) {
      if (deviceOf[e] >= 0) continue
      const score = meanTo(P, e, placed)
      if (score < bestScore - 1e-15) [best, bestScore] = [e, score]
    }
    put(best, d)
  }
  // 3. Fill each device with its strongest collaborators.
  for (let d = 0; d < used; d++) {
    while (members[d].length < cap[d]) {
      let best = -1
      let bestScore = -Infinity
      for (let e = 0; e < E; e++) {
        if (deviceOf[e] >= 0) continue
        const score = meanTo(P, e, members[d])
        if (score > bestScore + 1e-15) [best, bestScore] = [e, score]
      }
      put(best, d)
    }
  }
  return placementFromDevices(deviceOf, D, 'collaboration')
}

function meanTo(P: readonly (readonly number[])[], e: number, set: readonly number[]): number {
  let s = 0
  for (const m of set) s += P[e][m]
  return set.length === 0 ? 0 : s / set.length
}

function symmetricNormalised(M: readonly (readonly number[])[]): number[][] {
  const E = M.length
  const P = Array.from({ length: E }, () => new Array<number>(E).fill(0))
  let max = 0
  for (let i = 0; i < E; i++) {
    for (let j = 0; j < E; j++) {
      if (i === j) continue
      const v = M[i][j] + M[j][i]
      if (!Number.isFinite(v) || v < 0) {
        throw new MoeError(ErrorCodes.INPUT_INVALID, `co-activation count at (${i}, ${j}) must be finite and ≥ 0`, { path: '/coactivation' })
      }
      P[i][j] = v
      if (v > max) max = v
    }
  }
  if (max > 0) for (const row of P) for (let j = 0; j < E; j++) row[j] /= max
  return P
}

/**
 * Ordered co-activation counts of routings: `M[i][j]` += 1 for every token that chose both
 * i and j (i ≠ j; both orders counted, the diagonal stays 0). Accepts core Routing objects.
 */
export function coactivationCounts(
  experts: number,
  routings: Iterable<{ readonly tokens: number; readonly slots: number; readonly expertIds: Int32Array }>,
): number[][] {
  const M = Array.from({ length: experts }, () => new Array<number>(experts).fill(0))
  for (const r of routings) {
    for (let t = 0; t < r.tokens; t++) {
      const o = t * r.slots
      for (let a = 0; a < r.slots; a++) {
        const i = r.expertIds[o + a]
        if (i < 0) continue
        for (let b = 0; b < r.slots; b++) {
          const j = r.expertIds[o + b]
          if (j >= 0 && j !== i) M[i][j]++
        }
      }
    }
  }
  return M
}
