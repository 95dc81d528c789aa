/**
 * The `expanded-drop` policy: Capacity-Aware Expanded Drop (He et al., ICLR 2026; SPEC A.5).
 * Each token's candidates are its top-k plus extra experts (local ones by default); every
 * expert keeps its C = ⌈γ·k·T/E⌉ best candidates by gate score, and a kept candidate is
 * weighted by its raw softmax score (or, with `weights: 'model-native'`, in the model's scale).
 */
import {
  definePolicy,
  type DroppedPair,
  type Pair,
  type PlacementMap,
  type PluginContext,
  type PolicyContext,
  type PolicyOutcome,
  type Routing,
  type RoutingPolicy,
} from '@moe-route/core'
import {
  buildOutcome,
  capacityOf,
  checkRouting,
  DECODE_SKIPPED,
  keepWithinCapacity,
  nativeDenominators,
  scopeGroups,
  skippedOutcome,
} from '@moe-route/policy-capacity-drop'
import { extraCandidates, placementRequired } from './candidates.js'
import { expandedDropStage } from './expanded-drop.wgsl.js'
import { defaultOptions, schema, type ExpandedDropOptions } from './expanded-drop.schema.js'

/** npm name of this package (equals package.json `name`). */
export const PACKAGE_NAME = '@moe-route/policy-expanded-drop'
/** Version of this package (equals package.json `version`). */
export const PACKAGE_VERSION = '0.1.0'
/** Policy name used in configs, errors and dropped-pair reports. */
export const POLICY_NAME = 'expanded-drop'

interface Candidate {
  readonly token: number
  readonly expert: number
  readonly score: number
}

const byScore = (a: Candidate, b: Candidate) => b.score - a.score || a.token - b.token || a.expert - b.expert

/**
 * Applies Expanded Drop to one routing (pure). Input pairs that lose are dropped with reason
 * `capacity` (or `max-experts-per-token` when `maxExpertsPerToken` removes them); kept
 * candidates that were not input pairs are reported in `added`.
 * @param placement The placement in force (used by `candidates: 'local'` without `localExperts`).
 */
export function applyExpandedDrop(routing: Routing, options: ExpandedDropOptions, placement?: PlacementMap, policy = POLICY_NAME): PolicyOutcome {
  checkRouting(routing, policy)
  if (routing.decode && !options.applyToDecode) return skippedOutcome(routing, DECODE_SKIPPED)
  const { experts: E, slots, expertIds, weights, scores } = routing
  const extra = extraCandidates(routing, options, placement, policy)
  const inputWeight = new Map<number, number>()
  for (let t = 0; t < routing.tokens; t++) {
    for (let j = 0; j < slots; j++) {
      const e = expertIds[t * slots + j]
      if (e >= 0) inputWeight.set(t * E + e, weights[t * slots + j])
    }
  }
  const mark = new Int32Array(E).fill(-1)
  const keptByToken: Candidate[][] = Array.from({ length: routing.tokens }, () => [])
  const dropped: DroppedPair[] = []
  let capacity = 0
  for (const group of scopeGroups(routing, options.scope)) {
    const C = capacityOf(options.capacityFactor, group.tokens.length, routing.topK, E, options.rounding)
    capacity = Math.max(capacity, C)
    const candidates: Candidate[] = []
    for (const t of group.tokens) {
      const push = (e: number) => {
        if (mark[e] === t) return // de-duplicate: an expert both in the top-k and local
        mark[e] = t
        candidates.push({ token: t, expert: e, score: scores[t * E + e] })
      }
      for (let j = 0; j < slots; j++) if (expertIds[t * slots + j] >= 0) push(expertIds[t * slots + j])
      const more = extra(t)
      for (let i = 0; i < more.length; i++) push(more[i])
    }
    const cut = keepWithinCapacity(candidates, E, (c) => c.expert, () => C, byScore)
    for (const c of cut.kept) keptByToken[c.token].push(c)
    for (const c of cut.over) {
      const w = inputWeight.get(c.token * E + c.expert)
      if (w !== undefined) dropped.push({ token: c.token, expert: c.expert, weight: w, reason: 'capacity', policy })
    }
  }
  const den = options.weights === 'model-native' ? nativeDenominators(routing) : null
  const pairs: Pair[] = []
  const added: Pair[] = []
  const max = options.maxExpertsPerToken
  for (const list of keptByToken) {
    if (max !== null && list.length > max) list.sort(byScore)
    list.forEach((c, i) => {
      const w = inputWeight.get(c.token * E + c.expert)
      if (max !== null && i >= max) {
        if (w !== undefined) dropped.push({ token: c.token, expert: c.expert, weight: w, reason: 'max-experts-per-token', policy })
        return
      }
      const pair = { token: c.token, expert: c.expert, weight: den ? c.score / den[c.token] : c.score }
      pairs.push(pair)
      if (w === undefined) added.push(pair)
    })
  }
  return buildOutcome(routing, { pairs, dropped, added, capacity })
}

/**
 * Creates the policy directly, without a registry (defaults merged under `options`). The
 * placement comes from each call's `PolicyContext` (core).
 * @example
 * const policy = createExpandedDrop({ capacityFactor: 1.5, candidates: 'local' })
 * const { routing: expanded, added } = policy.apply(routing, { placement, batchId: 0, random })
 */
export function createExpandedDrop(options: Partial<ExpandedDropOptions> = {}): RoutingPolicy & { readonly options: Readonly<ExpandedDropOptions> } {
  const o: ExpandedDropOptions = { ...defaultOptions, ...options }
  return {
    name: POLICY_NAME,
    options: o,
    apply: (routing: Routing, ctx: PolicyContext) => applyExpandedDrop(routing, o, ctx.placement),
    lower: (ctx) => expandedDropStage(o, ctx),
  }
}

/**
 * The `expanded-drop` policy plugin. Select it in a config with
 * `{ "use": "expanded-drop", "options": { "candidates": "local" } }` (and `"devices": 8`).
 * Creating it with `candidates: 'local'`, no `localExperts` and one device throws
 * MOE_ROUTE_ERR_POLICY_PLACEMENT_REQUIRED.
 * @example
 * import expandedDrop from '@moe-route/policy-expanded-drop'
 * registry.register(expandedDrop)
 */
export const expandedDrop = definePolicy<ExpandedDropOptions>({
  meta: {
    name: POLICY_NAME,
    package: PACKAGE_NAME,
    version: PACKAGE_VERSION,
    core: '^0.1.0',
    description: 'Capacity-Aware Expanded Drop: top-k plus local (or top-M, or all) candidates, each expert keeps its ⌈γ·k·T/E⌉ best',
    schema,
    defaultOptions,
    device: ['wgsl'],
    docs: { url: 'https://github.com/moe-route/moe-route/tree/main/packages/policies/expanded-drop#readme' },
  },
  create(options: ExpandedDropOptions, context: PluginContext) {
    if (options.candidates === 'local' && options.localExperts === null) {
      const devices = context.placement?.devices ?? context.devices
      if (!(devices > 1)) throw placementRequired(POLICY_NAME, devices)
    }
    return createExpandedDrop(options)
  },
})
