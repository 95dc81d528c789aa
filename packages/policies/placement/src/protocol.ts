/**
 * The paper's evaluation protocol (SPEC B.5): build each placement on the first half of a
 * load history, measure Max Load and Avg Max Load on the second half.
 */
import type { Placement, PlacementInput } from '@moe-route/core'
import { checkHistory, evaluateLoad, splitHistory, type LoadHistory } from './history.js'

/** One strategy's result under the protocol. */
export interface ProtocolRow {
  readonly strategy: string
  /** Max over measured batches of the heaviest device's share of pairs. */
  readonly maxLoad: number
  /** Mean over measured batches of the heaviest device's share. */
  readonly avgMaxLoad: number
  /** Batches used to build and to measure. */
  readonly buildBatches: number
  readonly measureBatches: number
}

/** Inputs of {@link placementProtocol}. */
export interface ProtocolInput {
  readonly experts: number
  readonly devices: number
  /** The whole history, in time order; split in halves. */
  readonly history: LoadHistory
  /** Co-activation counts of the build half, for collaboration placement. */
  readonly coactivation?: readonly (readonly number[])[]
}

/**
 * Runs every placement through the protocol.
 * @example
 * placementProtocol([contiguous, greedy, anti], { experts: 64, devices: 8, history })
 */
export function placementProtocol(placements: readonly Placement[], input: ProtocolInput): ProtocolRow[] {
  checkHistory(input.history, input.experts)
  const { build, measure } = splitHistory(input.history)
  const buildInput: PlacementInput = {
    experts: input.experts,
    devices: input.devices,
    history: build,
    ...(input.coactivation ? { coactivation: input.coactivation } : {}),
  }
  return placements.map((p) => {
    const ev = evaluateLoad(p.place(buildInput), measure)
    return { strategy: p.name, maxLoad: ev.maxLoad, avgMaxLoad: ev.avgMaxLoad, buildBatches: build.length, measureBatches: measure.length }
  })
}
