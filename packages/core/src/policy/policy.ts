import { defineToken } from '../tokens.js'
import type { PlacementMap } from '../placement/placement.js'
import type { DroppedPair, Pair, ReroutedPair, Routing } from '../types.js'

/** What a routing policy sees besides the routing. */
export interface PolicyContext {
  readonly placement: PlacementMap
  readonly batchId: number
  /** A seeded generator in [0, 1), fresh per batch and policy (for `random` priorities). */
  readonly random: () => number
}

/** What a routing policy returns. */
export interface PolicyOutcome {
  readonly routing: Routing
  /** Pairs of the input routing that are not in the output. */
  readonly dropped: readonly DroppedPair[]
  /** Pairs moved to another expert (each also appears in the output routing). */
  readonly rerouted?: readonly ReroutedPair[]
  /** Pairs added that were not in the input (expanded drop candidates kept). */
  readonly added?: readonly Pair[]
  /** Per-expert capacity applied, if any. */
  readonly capacity?: number | null
  /** Set when the policy chose not to act on this batch (e.g. decode), with why. */
  readonly skipped?: string
}

/**
 * Edits a routing, usually under capacity limits. Pure over one batch: same input, same
 * output. Policies run in the order the config lists them.
 */
export interface RoutingPolicy {
  readonly name: string
  apply(routing: Routing, ctx: PolicyContext): PolicyOutcome
  dispose?(): void
}
/** The ordered policy stack of a container (one array value). */
export const RoutingPolicy = defineToken<readonly RoutingPolicy[]>('RoutingPolicy')
