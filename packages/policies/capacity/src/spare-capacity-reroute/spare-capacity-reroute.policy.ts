/**
 * The `spare-capacity-reroute` policy (beyond the paper): score token drop, then each
 * overflow pair moves, in one pass, to the highest-scoring expert of its token that still has
 * room under the same capacity C and that the token does not already use. Nothing is
 * re-dropped, so every expert stays within C and each overflow pair is handled once.
 */
import { defineCapacityPolicy, type CapacityPolicyInstance } from '../define-capacity-policy.js'
import { type Plugin, pairScores, scoreRow, type PolicyOutcome, type Routing } from '@moe-route/core'
import { capacityCut, capacityOf, capacityOutcome, checkRouting, DECODE_SKIPPED, nativeDenominatorsTyped, outputPairs, pairGroups, pairTable, priorityKeys, pushPair, reroutedList, skippedOutcome } from '../shared/index.js'
import { defaultOptions, schema, type SpareCapacityRerouteOptions } from './spare-capacity-reroute.schema.js'
import { spareCapacityRerouteStage } from './spare-capacity-reroute.wgsl.js'

export { PACKAGE_NAME, PACKAGE_VERSION } from '../meta.js'
/** Policy name used in configs, errors and dropped-pair reports. */
export const POLICY_NAME = 'spare-capacity-reroute'

/**
 * Applies spare-capacity reroute to one routing (pure). Overflow pairs are visited best score
 * first (then token, then expert) and each moves to its token's best expert with room
 * (score descending, then expert ascending), within the token's top-`maxRank` when set.
 * Pairs with nowhere to go are dropped with reason `reroute-exhausted`.
 */
export function applySpareCapacityReroute(routing: Routing, options: SpareCapacityRerouteOptions, policy = POLICY_NAME): PolicyOutcome {
  checkRouting(routing, policy)
  if (routing.decode && !options.applyToDecode) return skippedOutcome(routing, DECODE_SKIPPED)
  const { experts: E, tokens: T } = routing
  const table = pairTable(routing)
  const keys = priorityKeys(routing, table, 'score')
  const top = pairScores(routing)
  const den = nativeDenominatorsTyped(routing)
  const over = new Uint8Array(table.count)
  const exhausted = new Uint8Array(table.count)
  // moves in visit order: token, from-pair, to-expert, the destination's score
  const moveToken: number[] = []
  const moveFrom: number[] = []
  const moveTo: number[] = []
  const moveScore: number[] = []
  const used = new Int32Array(E).fill(-1) // used[e] === t: token t holds (or held) expert e
  const extra = new Map<number, number[]>() // experts a token moved to, beyond its input ones
  const row = new Float32Array(E)
  const ranked = new Int32Array(E)
  const limit = options.maxRank === null ? E : Math.min(E, options.maxRank)
  let capacity = 0
  for (const group of pairGroups(routing, table, options.scope)) {
    const C = capacityOf(options.capacityFactor, group.tokens, routing.topK, E, options.rounding)
    capacity = Math.max(capacity, C)
    const n = capacityCut(table, group.pairs, table.expert, E, () => C, keys, over)
    const load = new Int32Array(E)
    const overflow: number[] = []
    for (const p of group.pairs) {
      if (over[p]) overflow.push(p)
      else load[table.expert[p]]++
    }
    if (n === 0) continue
    // overflow pairs best first: score descending, then token, then expert (stable)
    overflow.sort((a, b) => keys[b] - keys[a] || table.token[a] - table.token[b] || table.expert[a] - table.expert[b] || a - b)
    for (const p of overflow) {
      const t = table.token[p]
      for (let q = table.tokenStart[t]; q < table.tokenStart[t + 1]; q++) used[table.expert[q]] = t
      for (const e of extra.get(t) ?? []) used[e] = t
      // the token's experts by score descending, then expert ascending
      const r = scoreRow(routing, t, row)
      for (let e = 0; e < E; e++) ranked[e] = e
      ranked.sort((x, y) => r[y] - r[x] || x - y)
      let to = -1
      for (let i = 0; i < limit; i++) {
        const e = ranked[i]
        if (used[e] !== t && load[e] < C) {
          to = e
          break
        }
      }
      if (to < 0) {
        exhausted[p] = 1
        continue
      }
      load[to]++
      let list = extra.get(t)
      if (!list) extra.set(t, (list = []))
      list.push(to)
      moveToken.push(t)
      moveFrom.push(p)
      moveTo.push(to)
      moveScore.push(r[to])
    }
  }
  // output per token: kept pairs by expert (the reference's kept-list order), then its moves in visit order
  const movesOf = new Map<number, number[]>()
  for (let m = 0; m < moveToken.length; m++) {
    let list = movesOf.get(moveToken[m])
    if (!list) movesOf.set(moveToken[m], (list = []))
    list.push(m)
  }
  const out = outputPairs(table.count + moveToken.length)
  const outOfMove = new Int32Array(moveToken.length)
  const idx: number[] = []
  for (let t = 0; t < T; t++) {
    idx.length = 0
    for (let p = table.tokenStart[t]; p < table.tokenStart[t + 1]; p++) if (!over[p]) idx.push(p)
    if (idx.length > 1) idx.sort((a, b) => table.expert[a] - table.expert[b] || a - b)
    for (const p of idx) pushPair(out, t, table.expert[p], routing.weights[table.slot[p]], top[table.slot[p]])
    for (const m of movesOf.get(t) ?? []) {
      outOfMove[m] = out.count
      pushPair(out, t, moveTo[m], moveScore[m] / den[t], moveScore[m])
    }
  }
  const move = (m: number) => ({ token: moveToken[m], from: table.expert[moveFrom[m]], to: moveTo[m], at: outOfMove[m] })
  const rerouted = reroutedList(out, moveToken.length, move, policy)
  return capacityOutcome(routing, out, { table, over: exhausted, reason: 'reroute-exhausted', policy, capacity, renormalize: options.renormalize, lazy: { rerouted } })
}

const family = defineCapacityPolicy<SpareCapacityRerouteOptions>({
  name: POLICY_NAME,
  description: 'Score token drop, then each overflow pair moves once to its best expert that still has room',
  schema,
  defaultOptions,
  apply: (routing, o) => applySpareCapacityReroute(routing, o),
  lower: (o, ctx) => spareCapacityRerouteStage(o, ctx),
})

/**
 * Creates the policy directly, without a registry (defaults merged under `options`).
 * @example
 * const policy = createSpareCapacityReroute({ capacityFactor: 1.25, maxRank: 4 })
 * const outcome = policy.apply(routing, ctx)
 */
export const createSpareCapacityReroute: (options?: Partial<SpareCapacityRerouteOptions>) => CapacityPolicyInstance<SpareCapacityRerouteOptions> = family.create

/**
 * The `spare-capacity-reroute` policy plugin. Select it in a config with
 * `{ "use": "spare-capacity-reroute", "options": { "capacityFactor": 1.5 } }`.
 * @example
 * import { spareCapacityReroute } from '@moe-route/policy-capacity'
 * registry.register(spareCapacityReroute)
 */
export const spareCapacityReroute: Plugin<'policy', SpareCapacityRerouteOptions> = family.plugin
