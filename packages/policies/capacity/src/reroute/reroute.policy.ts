/**
 * The `reroute` policy: Capacity-Aware Token Reroute, the multi-round method of the paper's v1
 * (SPEC A.4, official code `883bccb` `adjust_tokens`). Over-capacity experts drop their
 * lowest-score pairs; those tokens re-select their next-best experts by score; capacity is
 * enforced again; after `rounds` passes whatever is still over capacity is dropped.
 */
import { defineCapacityPolicy, type CapacityPolicyInstance } from '../define-capacity-policy.js'
import { type Plugin, pairScores, scoreRow, type PolicyOutcome, type Routing } from '@moe-route/core'
import { capacityOf, capacityOutcome, checkRouting, DECODE_SKIPPED, nativeDenominatorsTyped, outputPairs, pairGroups, pairTable, pushPair, reroutedList, skippedOutcome } from '../shared/index.js'
import { defaultOptions, schema, type RerouteOptions } from './reroute.schema.js'
import { rerouteStage } from './reroute.wgsl.js'

export { PACKAGE_NAME, PACKAGE_VERSION } from '../meta.js'
/** Policy name used in configs, errors and dropped-pair reports. */
export const POLICY_NAME = 'reroute'

/**
 * Applies Token Reroute to one routing (pure). Input pairs that end at another expert are
 * reported in `rerouted` (a token's lost experts, best score first, are matched with its new
 * experts, best score first); the rest of the lost pairs are dropped with reason
 * `reroute-exhausted`. Typed arrays throughout; full score rows are read only for the tokens
 * that re-select, and the reports are listed only when read.
 */
export function applyReroute(routing: Routing, options: RerouteOptions, policy = POLICY_NAME): PolicyOutcome {
  checkRouting(routing, policy)
  if (routing.decode && !options.applyToDecode) return skippedOutcome(routing, DECODE_SKIPPED)
  const { experts: E, tokens: T } = routing
  const table = pairTable(routing)
  const top = pairScores(routing)
  const den = nativeDenominatorsTyped(routing)
  // the selection of every token: up to its input count of experts, in selection order
  const selStart = table.tokenStart
  const selCount = new Int32Array(T)
  const selExpert = new Int32Array(table.count)
  const selScore = new Float32Array(table.count)
  for (let t = 0; t < T; t++) {
    for (let p = selStart[t]; p < selStart[t + 1]; p++) {
      selExpert[p] = table.expert[p]
      selScore[p] = top[table.slot[p]]
    }
    selCount[t] = selStart[t + 1] - selStart[t]
  }
  const row = new Float32Array(E)
  const ranked = new Int32Array(E)
  let capacity = 0
  for (const group of pairGroups(routing, table, options.scope)) {
    const C = capacityOf(options.capacityFactor, group.tokens, routing.topK, E, options.rounding)
    capacity = Math.max(capacity, C)
    // the group's tokens with pairs, ascending (pairGroups lists pairs in token order; tokens
    // without pairs select nothing)
    const tokens: number[] = []
    for (const p of group.pairs) if (tokens[tokens.length - 1] !== table.token[p]) tokens.push(table.token[p])
    const banned = new Set<number>()
    let under: number[] = []
    for (let r = 1; r <= options.rounds; r++) {
      if (r > 1) {
        for (const t of under) {
          const want = selStart[t + 1] - selStart[t] - selCount[t]
          // next-best experts by score (ties: lower expert), skipping chosen and banned ones
          const rowScores = scoreRow(routing, t, row)
          let n = 0
          for (let e = 0; e < E; e++) {
            if (banned.has(t * E + e)) continue
            let have = false
            for (let i = 0; i < selCount[t]; i++) if (selExpert[selStart[t] + i] === e) have = true
            if (!have) ranked[n++] = e
          }
          const options_ = ranked.subarray(0, n).sort((a, b) => rowScores[b] - rowScores[a] || a - b)
          for (let i = 0; i < Math.min(want, n); i++) {
            const at = selStart[t] + selCount[t]++
            selExpert[at] = options_[i]
            selScore[at] = rowScores[options_[i]]
          }
        }
      }
      // the capacity cut over the current selections: per expert, score desc, token asc
      const counts = new Int32Array(E)
      for (const t of tokens) for (let i = 0; i < selCount[t]; i++) counts[selExpert[selStart[t] + i]]++
      let anyOver = false
      for (let e = 0; e < E; e++) if (counts[e] > C) anyOver = true
      if (!anyOver) break
      const lists = new Map<number, number[]>() // over-capacity expert → selection slots, token order
      for (const t of tokens) {
        for (let i = 0; i < selCount[t]; i++) {
          const e = selExpert[selStart[t] + i]
          if (counts[e] <= C) continue
          let list = lists.get(e)
          if (!list) lists.set(e, (list = []))
          list.push(selStart[t] + i)
        }
      }
      // selection slots live in their token's pair range, so the pair table names their token
      const tokenOf = (at: number) => table.token[at]
      const removed = new Set<number>()
      for (const [e, list] of [...lists].sort((a, b) => a[0] - b[0])) {
        list.sort((a, b) => selScore[b] - selScore[a] || tokenOf(a) - tokenOf(b) || a - b)
        for (let i = C; i < list.length; i++) {
          const at = list[i]
          banned.add(tokenOf(at) * E + e)
          removed.add(at)
        }
      }
      // remove the over-capacity pairs from their tokens' selections, keeping the order
      const touched = new Set<number>()
      for (const at of removed) touched.add(tokenOf(at))
      for (const t of touched) {
        let w = selStart[t]
        for (let i = 0; i < selCount[t]; i++) {
          const at = selStart[t] + i
          if (removed.has(at)) continue
          selExpert[w] = selExpert[at]
          selScore[w] = selScore[at]
          w++
        }
        selCount[t] = w - selStart[t]
      }
      under = tokens.filter((t) => selCount[t] < selStart[t + 1] - selStart[t])
    }
  }
  // output: each token's final selection in order; lost input pairs matched with gained experts
  const out = outputPairs(table.count)
  const exhausted = new Uint8Array(table.count)
  const moves: { token: number; from: number; to: number; at: number }[] = []
  for (let t = 0; t < T; t++) {
    const a = selStart[t]
    const firstOut = out.count
    for (let i = 0; i < selCount[t]; i++) {
      const e = selExpert[a + i]
      let input = -1
      for (let p = a; p < selStart[t + 1]; p++) if (table.expert[p] === e) input = input < 0 ? p : input
      pushPair(out, t, e, input >= 0 ? routing.weights[table.slot[input]] : selScore[a + i] / den[t], selScore[a + i])
    }
    if (selCount[t] === selStart[t + 1] - a) {
      // same count: lost only if some input expert is gone
      let same = true
      for (let p = a; p < selStart[t + 1] && same; p++) {
        let kept = false
        for (let i = 0; i < selCount[t]; i++) if (selExpert[a + i] === table.expert[p]) kept = true
        same = kept
      }
      if (same) continue
    }
    const lost: number[] = []
    for (let p = a; p < selStart[t + 1]; p++) {
      let kept = false
      for (let i = 0; i < selCount[t]; i++) if (selExpert[a + i] === table.expert[p]) kept = true
      if (!kept) lost.push(p)
    }
    const gained: number[] = []
    for (let i = 0; i < selCount[t]; i++) {
      let input = false
      for (let p = a; p < selStart[t + 1]; p++) if (table.expert[p] === selExpert[a + i]) input = true
      if (!input) gained.push(i)
    }
    lost.sort((x, y) => top[table.slot[y]] - top[table.slot[x]] || table.expert[x] - table.expert[y])
    gained.sort((x, y) => selScore[a + y] - selScore[a + x] || selExpert[a + x] - selExpert[a + y])
    lost.forEach((p, i) => {
      if (i < gained.length) moves.push({ token: t, from: table.expert[p], to: selExpert[a + gained[i]], at: firstOut + gained[i] })
      else exhausted[p] = 1
    })
  }
  return capacityOutcome(routing, out, {
    table,
    over: exhausted,
    reason: 'reroute-exhausted',
    policy,
    capacity,
    renormalize: options.renormalize,
    lazy: { rerouted: reroutedList(out, moves.length, (i) => moves[i], policy) },
  })
}

const family = defineCapacityPolicy<RerouteOptions>({
  name: POLICY_NAME,
  description: 'Capacity-Aware Token Reroute (paper v1): drop by score, re-select next-best experts, repeat for R rounds',
  schema,
  defaultOptions,
  apply: (routing, o) => applyReroute(routing, o),
  lower: (o, ctx) => rerouteStage(o, ctx),
})

/**
 * Creates the policy directly, without a registry (defaults merged under `options`).
 * @example
 * const policy = createReroute({ capacityFactor: 1, rounds: 3 })
 * const { routing: rerouted, rerouted: moves } = policy.apply(routing, ctx)
 */
export const createReroute: (options?: Partial<RerouteOptions>) => CapacityPolicyInstance<RerouteOptions> = family.create

/**
 * The `reroute` policy plugin. Select it in a config with
 * `{ "use": "reroute", "options": { "capacityFactor": 1.5, "rounds": 2 } }`.
 * @example
 * import { reroute } from '@moe-route/policy-capacity'
 * registry.register(reroute)
 */
export const reroute: Plugin<'policy', RerouteOptions> = family.plugin
