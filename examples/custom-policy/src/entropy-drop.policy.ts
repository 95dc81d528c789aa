/**
 * entropy-drop: a capacity-aware token drop whose priority is the router's confidence.
 * When an expert receives more than C pairs, it keeps those of the tokens with the lowest
 * routing entropy and drops the pairs of the most uncertain tokens first: a token the
 * router is unsure about loses less by being dropped than a confident one.
 */
import { definePolicy, expertCapacity, pairsOf, pushAll, routingFromPairs, type DroppedPair, type Pair, type PolicyOutcome, type Routing } from '@moe-route/core'
import pkg from '../package.json' with { type: 'json' }
import { tokenEntropy } from './entropy.js'
import { defaultOptions, schema, type EntropyDropOptions } from './entropy-drop.schema.js'

/** The policy's name in configs, errors and telemetry. */
export const POLICY_NAME = 'entropy-drop'

/**
 * Applies entropy-drop to one routing (the pure function behind the plugin). Within an
 * expert, pairs are kept by entropy ascending, then gate score descending, then token index
 * ascending, so the outcome is fully determined by the routing.
 */
export function entropyDrop(routing: Routing, options: EntropyDropOptions): PolicyOutcome {
  if (routing.decode && options.skipDecode) return { routing, dropped: [], capacity: null, skipped: 'decode batch' }
  const capacity = expertCapacity(options.capacityFactor, routing.tokens, routing.topK, routing.experts, options.rounding)
  const entropy = tokenEntropy(routing)
  const { scores, experts } = routing
  const byExpert: Pair[][] = Array.from({ length: experts }, () => [])
  for (const p of pairsOf(routing)) byExpert[p.expert].push(p)
  const kept: Pair[] = []
  const dropped: DroppedPair[] = []
  for (const pairs of byExpert) {
    if (pairs.length <= capacity) {
      pushAll(kept, pairs)
      continue
    }
    pairs.sort(
      (a, b) =>
        entropy[a.token] - entropy[b.token] ||
        scores[b.token * experts + b.expert] - scores[a.token * experts + a.expert] ||
        a.token - b.token,
    )
    pushAll(kept, pairs.slice(0, capacity))
    for (const p of pairs.slice(capacity)) dropped.push({ ...p, reason: 'capacity', policy: POLICY_NAME })
  }
  if (dropped.length === 0) return { routing, dropped, capacity }
  return { routing: routingFromPairs(routing, kept, routing.slots), dropped, capacity }
}

/**
 * The `entropy-drop` policy plugin.
 * @example
 * // moe-route.config.json
 * { "policies": [{ "use": "moe-route-policy-entropy-drop", "options": { "capacityFactor": 1.5 } }] }
 * @example
 * import { createMoe } from '@moe-route/core'
 * import entropyDropPolicy from 'moe-route-policy-entropy-drop'
 * const engine = createMoe({ plugins: [entropyDropPolicy], config: { model, policies: [{ use: 'entropy-drop' }] } })
 */
export const entropyDropPolicy = definePolicy<EntropyDropOptions>({
  meta: {
    name: POLICY_NAME,
    package: pkg.name,
    version: pkg.version,
    core: pkg.peerDependencies['@moe-route/core'],
    description: 'Capacity drop that drops the pairs of the highest-routing-entropy tokens first',
    schema,
    defaultOptions,
    docs: { url: 'https://github.com/moe-route/moe-route/tree/main/examples/custom-policy#readme' },
  },
  create(options) {
    return { name: POLICY_NAME, apply: (routing) => entropyDrop(routing, options) }
  },
})
