/** Building a {@link PolicyOutcome} from the pairs a policy kept, dropped, moved and added. */
import { routingFromPairs, type DroppedPair, type Pair, type PolicyOutcome, type ReroutedPair, type Routing } from '@moe-route/core'

/** What a capacity policy decided for one batch. */
export interface OutcomeParts {
  /** Every pair of the output routing, with its final weight. */
  readonly pairs: readonly Pair[]
  readonly dropped: readonly DroppedPair[]
  readonly rerouted?: readonly ReroutedPair[]
  readonly added?: readonly Pair[]
  readonly capacity: number | null
}

const byTokenExpert = (a: { token: number; expert: number }, b: { token: number; expert: number }) => a.token - b.token || a.expert - b.expert

/**
 * The outcome of a policy: a new routing (same tokens, experts and scores; slots as wide as
 * the widest token, at least `topK`) plus the reported pairs, sorted by token then expert so
 * equal decisions give equal outcomes.
 */
export function buildOutcome(input: Routing, parts: OutcomeParts): PolicyOutcome {
  const routing = routingFromPairs(input, parts.pairs, input.topK)
  return {
    routing,
    dropped: parts.dropped.slice().sort(byTokenExpert),
    ...(parts.rerouted ? { rerouted: parts.rerouted.slice().sort((a, b) => a.token - b.token || a.from - b.from) } : {}),
    ...(parts.added ? { added: parts.added.slice().sort(byTokenExpert) } : {}),
    capacity: parts.capacity,
  }
}

/**
 * The outcome of a policy that leaves the batch alone (a decode batch while `applyToDecode`
 * is false): the input routing, nothing dropped, and why in `skipped`.
 */
export function skippedOutcome(input: Routing, why: string): PolicyOutcome {
  return { routing: input, dropped: [], rerouted: [], added: [], capacity: null, skipped: why }
}

/** The `skipped` reason of decode batches. */
export const DECODE_SKIPPED = 'decode batch (one token per sequence): not capped because applyToDecode is false'
