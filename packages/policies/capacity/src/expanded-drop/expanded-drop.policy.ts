/**
 * The `expanded-drop` policy: Capacity-Aware Expanded Drop (He et al., ICLR 2026; SPEC A.5).
 * Each token's candidates are its top-k plus extra experts (local ones by default); every
 * expert keeps its C = ⌈γ·k·T/E⌉ best candidates by gate score, and a kept candidate is
 * weighted by its raw softmax score (or, with `weights: 'model-native'`, in the model's scale).
 */
import { defineCapacityPolicy, type CapacityPolicyInstance } from '../define-capacity-policy.js'
import { type Plugin, pairScores, scoreRow, type Pair, type PlacementMap, type PolicyOutcome, type Routing } from '@moe-route/core'
import { capacityOf, capacityOutcome, checkRouting, DECODE_SKIPPED, nativeDenominatorsTyped, outputPairs, pairTable, pushPair, scopeGroups, skippedOutcome } from '../shared/index.js'
import { extraCandidates, placementRequired } from './candidates.js'
import { expandedDropStage } from './expanded-drop.wgsl.js'
import { defaultOptions, schema, type ExpandedDropOptions } from './expanded-drop.schema.js'

export { PACKAGE_NAME, PACKAGE_VERSION } from '../meta.js'
/** Policy name used in configs, errors and dropped-pair reports. */
export const POLICY_NAME = 'expanded-drop'

/**
 * Applies Expanded Drop to one routing (pure). Input pairs that lose are dropped with reason
 * `capacity` (or `max-experts-per-token` when `maxExpertsPerToken` removes them); kept
 * candidates that were not input pairs are reported in `added`. Candidates live in typed
 * arrays; a token's score row is read only when it has extra candidates.
 * @param placement The placement in force (used by `candidates: 'local'` without `localExperts`).
 */
export function applyExpandedDrop(routing: Routing, options: ExpandedDropOptions, placement?: PlacementMap, policy = POLICY_NAME): PolicyOutcome {
  checkRouting(routing, policy)
  if (routing.decode && !options.applyToDecode) return skippedOutcome(routing, DECODE_SKIPPED)
  const { experts: E } = routing
  const extra = extraCandidates(routing, options, placement, policy)
  const table = pairTable(routing)
  const top = pairScores(routing)
  const row = new Float32Array(E)
  const mark = new Int32Array(E).fill(-1)
  // candidates, group by group: token, expert, score, input pair (−1: an extra candidate)
  const cToken: number[] = []
  const cExpert: number[] = []
  const cScore: number[] = []
  const cInput: number[] = []
  const kept: number[] = []
  const dropReason = new Map<number, string>() // input pair → why it was dropped
  let capacity = 0
  for (const group of scopeGroups(routing, options.scope)) {
    const C = capacityOf(options.capacityFactor, group.tokens.length, routing.topK, E, options.rounding)
    capacity = Math.max(capacity, C)
    const first = cToken.length
    // the group's tokens in order, including tokens without input pairs (they may gain candidates)
    for (const t of group.tokens) {
      let scores: Float32Array | null = null
      for (let p = table.tokenStart[t]; p < table.tokenStart[t + 1]; p++) {
        const e = table.expert[p]
        if (mark[e] === t) continue
        mark[e] = t
        cToken.push(t)
        cExpert.push(e)
        cScore.push(top[table.slot[p]])
        cInput.push(p)
      }
      const more = extra(t)
      for (let i = 0; i < more.length; i++) {
        const e = more[i]
        if (mark[e] === t) continue
        mark[e] = t
        scores ??= scoreRow(routing, t, row)
        cToken.push(t)
        cExpert.push(e)
        cScore.push(scores[e])
        cInput.push(-1)
      }
    }
    // per expert, keep the C best candidates: score descending, then token, then expert
    const counts = new Int32Array(E)
    for (let c = first; c < cToken.length; c++) counts[cExpert[c]]++
    const lists = new Map<number, number[]>()
    for (let c = first; c < cToken.length; c++) {
      const e = cExpert[c]
      if (counts[e] <= C) {
        kept.push(c)
        continue
      }
      let list = lists.get(e)
      if (!list) lists.set(e, (list = []))
      list.push(c)
    }
    for (const list of lists.values()) {
      list.sort((a, b) => cScore[b] - cScore[a] || cToken[a] - cToken[b] || cExpert[a] - cExpert[b] || a - b)
      for (let i = 0; i < list.length; i++) {
        if (i < C) kept.push(list[i])
        else if (cInput[list[i]] >= 0) dropReason.set(cInput[list[i]], 'capacity')
      }
    }
  }
  // each token's kept candidates by expert (the reference's kept-list order), best first when capped
  const byToken = new Map<number, number[]>()
  for (const c of kept) {
    let list = byToken.get(cToken[c])
    if (!list) byToken.set(cToken[c], (list = []))
    list.push(c)
  }
  const den = options.weights === 'model-native' ? nativeDenominatorsTyped(routing) : null
  const max = options.maxExpertsPerToken
  const out = outputPairs(kept.length)
  const added: number[] = []
  for (const t of [...byToken.keys()].sort((a, b) => a - b)) {
    const list = byToken.get(t)!.sort((a, b) => cExpert[a] - cExpert[b] || a - b)
    if (max !== null && list.length > max) list.sort((a, b) => cScore[b] - cScore[a] || cExpert[a] - cExpert[b])
    list.forEach((c, i) => {
      if (max !== null && i >= max) {
        if (cInput[c] >= 0) dropReason.set(cInput[c], 'max-experts-per-token')
        return
      }
      if (cInput[c] < 0) added.push(out.count)
      pushPair(out, t, cExpert[c], den ? cScore[c] / den[t] : cScore[c], cScore[c])
    })
  }
  const over = new Uint8Array(table.count)
  for (const p of dropReason.keys()) over[p] = 1
  const addedPairs = (): Pair[] =>
    added.map((i) => ({ token: out.token[i], expert: out.expert[i], weight: out.weight[i] })).sort((a, b) => a.token - b.token || a.expert - b.expert)
  return capacityOutcome(routing, out, { table, over, reason: (p: number) => dropReason.get(p)!, policy, capacity, lazy: { added: addedPairs } })
}


const family = defineCapacityPolicy<ExpandedDropOptions>({
  name: POLICY_NAME,
  description: 'Capacity-Aware Expanded Drop: top-k plus local (or top-M, or all) candidates, each expert keeps its ⌈γ·k·T/E⌉ best',
  schema,
  defaultOptions,
  apply: (routing, o, ctx) => applyExpandedDrop(routing, o, ctx.placement),
  lower: (o, ctx) => expandedDropStage(o, ctx),
  check(options, context) {
    if (options.candidates === 'local' && options.localExperts === null) {
      const devices = context.placement?.devices ?? context.devices
      if (!(devices > 1)) throw placementRequired(POLICY_NAME, devices)
    }
  },
})

/**
 * Creates the policy directly, without a registry (defaults merged under `options`). The
 * placement comes from each call's `PolicyContext` (core).
 * @example
 * const policy = createExpandedDrop({ capacityFactor: 1.5, candidates: 'local' })
 * const { routing: expanded, added } = policy.apply(routing, { placement, batchId: 0, random })
 */
export const createExpandedDrop: (options?: Partial<ExpandedDropOptions>) => CapacityPolicyInstance<ExpandedDropOptions> = family.create

/**
 * The `expanded-drop` policy plugin. Select it in a config with
 * `{ "use": "expanded-drop", "options": { "candidates": "local" } }` (and `"devices": 8`).
 * Creating it with `candidates: 'local'`, no `localExperts` and one device throws
 * MOE_ROUTE_ERR_POLICY_PLACEMENT_REQUIRED.
 * @example
 * import { expandedDrop } from '@moe-route/policy-capacity'
 * registry.register(expandedDrop)
 */
export const expandedDrop: Plugin<'policy', ExpandedDropOptions> = family.plugin
