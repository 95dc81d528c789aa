/** A pure per-batch summary of a policy outcome (the numbers the engine's telemetry reports). */
import { expertLoad, maxOverMean, type PolicyOutcome, type Routing } from '@moe-route/core'

/** What one policy did to one batch. */
export interface OutcomeSummary {
  /** Pairs in the input routing. */
  readonly pairsBefore: number
  /** Pairs in the output routing. */
  readonly pairsAfter: number
  /** Input pairs removed without replacement (`outcome.dropped`). */
  readonly dropped: number
  /** `dropped / pairsBefore` (SPEC Eq. 11 for a pure drop policy). */
  readonly droppedFraction: number
  /** Input pairs moved to another expert (`outcome.rerouted`). */
  readonly rerouted: number
  /**
   * Input pairs not computed at their original expert ÷ input pairs: dropped plus rerouted.
   * This is what the engine's telemetry reports as `droppedFraction`.
   */
  readonly displacedFraction: number
  /** Pairs in the output that were not in the input (expanded drop candidates, reroute targets). */
  readonly added: number
  /** Σ output weight of the input's (token, expert) pairs ÷ Σ input weight (telemetry `gateMassKept`). */
  readonly gateMassKept: number
  /** Σ of every output weight ÷ Σ input weight (counts reroute targets and added pairs too). */
  readonly gateMassAfter: number
  readonly loadBefore: readonly number[]
  readonly loadAfter: readonly number[]
  /** max/mean expert load (mean over all experts) before and after. */
  readonly maxMeanBefore: number
  readonly maxMeanAfter: number
  /** Largest expert load before and after (the straggler, SPEC Eq. 4). */
  readonly maxLoadBefore: number
  readonly maxLoadAfter: number
  /** Tokens that had pairs before and have none after (their MoE output is 0). */
  readonly tokensFullyDropped: number
}

/**
 * Summarises one outcome against the routing it was applied to.
 * @example
 * const outcome = createTokenDrop({ capacityFactor: 1 }).apply(routing, ctx)
 * const { droppedFraction, maxMeanAfter } = summarize(routing, outcome)
 */
export function summarize(before: Routing, outcome: Pick<PolicyOutcome, 'routing' | 'dropped' | 'rerouted'>): OutcomeSummary {
  const after = outcome.routing
  const E = before.experts
  const finalWeight = new Map<number, number>()
  const tokenHasAfter = new Uint8Array(before.tokens)
  let pairsAfter = 0
  let massAfter = 0
  for (let t = 0; t < after.tokens; t++) {
    for (let j = 0; j < after.slots; j++) {
      const e = after.expertIds[t * after.slots + j]
      if (e < 0) continue
      const w = after.weights[t * after.slots + j]
      finalWeight.set(t * E + e, w)
      pairsAfter++
      massAfter += w
      tokenHasAfter[t] = 1
    }
  }
  let pairsBefore = 0
  let massBefore = 0
  let massKept = 0
  let notComputed = 0
  let fullyDropped = 0
  const added = new Set(finalWeight.keys())
  for (let t = 0; t < before.tokens; t++) {
    let had = false
    for (let j = 0; j < before.slots; j++) {
      const e = before.expertIds[t * before.slots + j]
      if (e < 0) continue
      had = true
      pairsBefore++
      massBefore += before.weights[t * before.slots + j]
      const f = finalWeight.get(t * E + e)
      if (f === undefined) notComputed++
      else massKept += f
      added.delete(t * E + e)
    }
    if (had && !tokenHasAfter[t]) fullyDropped++
  }
  const loadBefore = expertLoad(before)
  const loadAfter = expertLoad(after)
  const dropped = outcome.dropped.length
  const rerouted = outcome.rerouted?.length ?? 0
  return {
    pairsBefore,
    pairsAfter,
    dropped,
    droppedFraction: pairsBefore === 0 ? 0 : dropped / pairsBefore,
    rerouted,
    displacedFraction: pairsBefore === 0 ? 0 : notComputed / pairsBefore,
    added: added.size,
    gateMassKept: massBefore === 0 ? 1 : massKept / massBefore,
    gateMassAfter: massBefore === 0 ? 1 : massAfter / massBefore,
    loadBefore,
    loadAfter,
    maxMeanBefore: maxOverMean(loadBefore),
    maxMeanAfter: maxOverMean(loadAfter),
    maxLoadBefore: Math.max(0, ...loadBefore),
    maxLoadAfter: Math.max(0, ...loadAfter),
    tokensFullyDropped: fullyDropped,
  }
}
