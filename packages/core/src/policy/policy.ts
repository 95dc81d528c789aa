import type { DeviceStage, LoweringContext } from '../device/lowering.js'
import { defineToken } from '../tokens.js'
import type { PlacementMap } from '../placement/placement.js'
import type { DroppedPair, Pair, ReroutedPair, Routing } from '../types.js'

/** What a routing policy sees besides the routing. */
export interface PolicyContext {
  readonly placement: PlacementMap
  readonly batchId: number
  /** A seeded generator in [0, 1), fresh per batch and policy (for `random` priorities). */
  readonly random: () => number
  /**
   * The seed of `random` (`random` is `mulberry32(randomSeed)`), when the caller knows it: a
   * policy run in another thread rebuilds the same stream from it.
   */
  readonly randomSeed?: number
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
  /** Set when the policy threw and its configured fallback produced this outcome. */
  readonly fallback?: PolicyFallback
}

/** What happened when a policy threw and its fallback ran instead. */
export interface PolicyFallback {
  readonly from: string
  readonly to: string
  readonly error: { readonly code: string; readonly message: string }
}

/**
 * Edits a routing, usually under capacity limits. Pure over one batch: same input, same
 * output. Policies run in the order the config lists them.
 */
export interface RoutingPolicy {
  readonly name: string
  apply(routing: Routing, ctx: PolicyContext): PolicyOutcome
  /**
   * The policy's GPU lowering for its options (a WGSL stage over {@link POLICY_PRELUDE}) that
   * makes exactly the decisions of `apply`, or null/absent: then a GPU backend runs `apply` on
   * the host (one round trip per batch, counted in telemetry).
   */
  lower?(context: LoweringContext): DeviceStage | null
  dispose?(): void
}
/**
 * A policy that runs `fallback` on a batch when `primary` throws; the outcome's `fallback`
 * field says so (the error is not swallowed silently: it lands in the telemetry).
 */
export function withFallback(primary: RoutingPolicy, fallback: RoutingPolicy, describe: (e: unknown) => { code: string; message: string }): RoutingPolicy {
  return {
    name: primary.name,
    apply(routing, ctx) {
      try {
        return primary.apply(routing, ctx)
      } catch (e) {
        const outcome = fallback.apply(routing, ctx)
        return { ...outcome, fallback: { from: primary.name, to: fallback.name, error: describe(e) } }
      }
    },
    // on the device the primary's lowering runs (a lowering cannot throw per batch)
    ...(primary.lower ? { lower: (c: Parameters<NonNullable<RoutingPolicy['lower']>>[0]) => primary.lower!(c) } : {}),
    dispose() {
      primary.dispose?.()
      fallback.dispose?.()
    },
  }
}

/** The ordered policy stack of a container (one array value). */
export const RoutingPolicy = defineToken<readonly RoutingPolicy[]>('RoutingPolicy')
