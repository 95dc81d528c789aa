/**
 * Greedy and anti-correlation placement (SPEC B.5, E.10; Paper B §VII). Experts are taken
 * by mean historical load, heaviest first, and each goes to the device with the lowest
 * estimated load among those with free slots. Ties: lower expert id first, lower device id.
 */
import { ErrorCodes, MoeError, type PlacementMap } from '@moe-route/core'
import { checkHistory, meanFractions, pearsonMatrix, type LoadHistory } from './history.js'
import { deviceCapacities, placementFromDevices } from './placement-map.js'

/** Inputs of {@link greedyPlacement}. */
export interface GreedyInput {
  readonly experts: number
  readonly devices: number
  /** batches × experts loads; the mean fraction Ã_m of each expert orders and weighs it. */
  readonly history: LoadHistory
}

/**
 * Greedy placement for independent activation: sort experts by Ã_m descending, put each on
 * the device with the smallest Σ Ã of its experts among devices with room (E/D each).
 * @example
 * const map = greedyPlacement({ experts: 64, devices: 8, history: firstHalf })
 */
export function greedyPlacement(input: GreedyInput): PlacementMap {
  const mean = checkedMean(input)
  return place(input.experts, input.devices, mean, (_e, members) => members.reduce((s, m) => s + mean[m], 0), 'greedy')
}

/** Inputs of {@link antiCorrelationPlacement}. */
export interface AntiCorrelationInput extends GreedyInput {
  /** Weight of the correlation term (the paper fixes 0.5). Default 0.5. */
  readonly rho?: number
  /** Precomputed Pearson matrix S (else computed from the history). */
  readonly correlation?: readonly (readonly number[])[]
}

/**
 * Anti-correlation placement for correlated activation: the same greedy order, but the load
 * estimate of device n when placing expert a is Σ_{m on n} (Ã_m + ρ·S_am), so experts that
 * rise and fall together land on different devices. S is the Pearson correlation of the
 * per-batch activation fractions (SPEC E.10).
 */
export function antiCorrelationPlacement(input: AntiCorrelationInput): PlacementMap {
  const mean = checkedMean(input)
  const rho = input.rho ?? 0.5
  if (!Number.isFinite(rho)) throw new MoeError(ErrorCodes.INPUT_INVALID, `rho must be finite, got ${rho}`, { path: '/rho' })
  const S = input.correlation ?? pearsonMatrix(input.history)
  if (S.length !== input.experts) {
    throw new MoeError(ErrorCodes.SHAPE_MISMATCH, `correlation matrix has ${S.length} rows, expected ${input.experts}`, { path: '/correlation' })
  }
  return place(input.experts, input.devices, mean, (a, members) => members.reduce((s, m) => s + mean[m] + rho * S[a][m], 0), 'anti-correlation')
}

function checkedMean(input: GreedyInput): number[] {
  const E = checkHistory(input.history, input.experts)
  if (E !== input.experts) throw new MoeError(ErrorCodes.SHAPE_MISMATCH, `history has ${E} experts, expected ${input.experts}`)
  return meanFractions(input.history)
}

function place(
  experts: number,
  devices: number,
  mean: readonly number[],
  estimate: (expert: number, members: readonly number[]) => number,
  strategy: string,
): PlacementMap {
  const cap = deviceCapacities(experts, devices)
  const members: number[][] = Array.from({ length: devices }, () => [])
  const order = Array.from({ length: experts }, (_, e) => e).sort((a, b) => mean[b] - mean[a] || a - b)
  const deviceOf = new Int32Array(experts)
  for (const e of order) {
    let best = -1
    let bestLoad = Infinity
    for (let d = 0; d < devices; d++) {
      if (members[d].length >= cap[d]) continue
      const load = estimate(e, members[d])
      if (load < bestLoad - 1e-15) {
        best = d
        bestLoad = load
      }
    }
    members[best].push(e)
    deviceOf[e] = best
  }
  return placementFromDevices(deviceOf, devices, strategy)
}
