/**
 * Per-batch telemetry: loads before and after, drops, gate mass kept, traffic.
 * Pure functions over routings and plans, shared by the engine and the simulator.
 */
import type { PlacementMap } from '../placement/placement.js'
import type { PolicyOutcome } from '../policy/policy.js'
import { balancedness, expertLoad, maxOverMean } from '../routing/routing.js'
import type { BatchTelemetry, BatchTimings, DispatchPlan, DropCount, DroppedPair, PolicyTelemetry, Routing, StoreTelemetry } from '../types.js'

/** Inputs of {@link computeTelemetry}. */
export interface TelemetryInput {
  readonly batchId: number
  readonly original: Routing
  readonly final: Routing
  readonly plan: DispatchPlan
  readonly outcomes: readonly { readonly policy: string; readonly outcome: PolicyOutcome }[]
  readonly placement: PlacementMap
  readonly timings: BatchTimings
  readonly store?: StoreTelemetry
  readonly backend?: string
  readonly fallback?: BatchTelemetry['fallback']
}

/** Computes the telemetry record of one batch. O(T·(k+E)). */
export function computeTelemetry(input: TelemetryInput): BatchTelemetry {
  const { original, plan, placement } = input
  const { tokens, experts } = original
  // Final weight of each computed (token, expert) pair, from the plan (after dispatcher drops).
  const finalWeight = new Float64Array(tokens * experts).fill(Number.NaN)
  for (let r = 0; r < plan.rowToken.length; r++) {
    const t = plan.rowToken[r]
    if (t < 0) continue
    const e = expertOfRow(plan, r)
    const k = t * experts + e
    finalWeight[k] = (Number.isNaN(finalWeight[k]) ? 0 : finalWeight[k]) + plan.rowWeight[r]
  }
  let pairsBefore = 0
  let dropped = 0
  let massBefore = 0
  let massKept = 0
  const tokenKept = new Uint8Array(tokens)
  for (let t = 0; t < tokens; t++) {
    for (let j = 0; j < original.slots; j++) {
      const e = original.expertIds[t * original.slots + j]
      if (e < 0) continue
      pairsBefore++
      const w = original.weights[t * original.slots + j]
      massBefore += w
      const f = finalWeight[t * experts + e]
      if (Number.isNaN(f)) dropped++
      else massKept += f
    }
  }
  let pairsAfter = 0
  let added = 0
  const isOriginal = new Uint8Array(tokens * experts)
  for (let t = 0; t < tokens; t++) {
    for (let j = 0; j < original.slots; j++) {
      const e = original.expertIds[t * original.slots + j]
      if (e >= 0) isOriginal[t * experts + e] = 1
    }
  }
  for (let i = 0; i < finalWeight.length; i++) {
    if (Number.isNaN(finalWeight[i])) continue
    pairsAfter++
    tokenKept[Math.floor(i / experts)] = 1
    if (!isOriginal[i]) added++
  }
  let fullyDropped = 0
  for (let t = 0; t < tokens; t++) if (!tokenKept[t]) fullyDropped++
  const loadBefore = expertLoad(original)
  const loadAfter = Array.from(plan.counts)
  let rerouted = 0
  const policies: PolicyTelemetry[] = input.outcomes.map(({ policy, outcome }) => {
    rerouted += outcome.rerouted?.length ?? 0
    return {
      policy,
      dropped: outcome.dropped.length,
      rerouted: outcome.rerouted?.length ?? 0,
      added: outcome.added?.length ?? 0,
      capacity: outcome.capacity ?? null,
      ...(outcome.skipped ? { skipped: outcome.skipped } : {}),
      ...(outcome.fallback ? { fallback: outcome.fallback } : {}),
    }
  })
  const telemetry: BatchTelemetry = {
    batchId: input.batchId,
    tokens,
    pairsBefore,
    pairsAfter,
    loadBefore,
    loadAfter,
    maxMeanBefore: maxOverMean(loadBefore),
    maxMeanAfter: maxOverMean(loadAfter),
    droppedPairs: dropped,
    droppedFraction: pairsBefore === 0 ? 0 : dropped / pairsBefore,
    reroutedPairs: rerouted,
    addedPairs: added,
    gateMassKept: massBefore === 0 ? 1 : massKept / massBefore,
    tokensFullyDropped: fullyDropped,
    policies,
    droppedBy: countDrops([...input.outcomes.map((o) => o.outcome.dropped), plan.dropped]),
    dispatch: {
      mode: plan.mode,
      slotsComputed: plan.rowToken.length,
      paddingRows: plan.paddingRows,
      bytesCrossDevice: plan.traffic.bytesCrossDevice,
      capacity: plan.capacity,
    },
    ...(placement.devices > 1 ? { deviceLoad: deviceLoad(loadAfter, placement) } : {}),
    ...(input.store ? { store: input.store } : {}),
    ...(input.backend ? { backend: input.backend } : {}),
    ...(input.fallback ? { fallback: input.fallback } : {}),
    timings: input.timings,
  }
  return telemetry
}

/** Dropped pairs counted by (policy, reason), in first-seen order. O(pairs). */
function countDrops(lists: readonly (readonly DroppedPair[])[]): DropCount[] {
  const byKey = new Map<string, { policy: string; reason: string; pairs: number }>()
  for (const list of lists) {
    for (const d of list) {
      const key = `${d.policy}\u0000${d.reason}`
      const c = byKey.get(key)
      if (c) c.pairs++
      else byKey.set(key, { policy: d.policy, reason: d.reason, pairs: 1 })
    }
  }
  return [...byKey.values()]
}

/** Expert of a plan row (binary search over offsets). */
export function expertOfRow(plan: DispatchPlan, row: number): number {
  let lo = 0
  let hi = plan.experts - 1
  while (lo < hi) {
    const mid = (lo + hi + 1) >> 1
    if (plan.offsets[mid] <= row) lo = mid
    else hi = mid - 1
  }
  return lo
}

/** Rows per device: each expert's load split evenly over its replicas. */
export function deviceLoad(load: readonly number[], placement: PlacementMap): number[] {
  const out = new Array<number>(placement.devices).fill(0)
  load.forEach((l, e) => {
    const reps = placement.replicas[e]
    for (const d of reps) out[d] += l / reps.length
  })
  return out
}

/** Running totals over a stream of batch telemetry (for reports). */
export class TelemetryAggregate {
  batches = 0
  tokens = 0
  pairsBefore = 0
  droppedPairs = 0
  reroutedPairs = 0
  addedPairs = 0
  gateMassKeptSum = 0
  maxMeanBeforeSum = 0
  maxMeanAfterSum = 0
  maxMeanBeforeMax = 0
  maxMeanAfterMax = 0
  balancednessBeforeSum = 0
  balancednessAfterSum = 0
  balancednessBeforeMin = 1
  balancednessAfterMin = 1
  totalMs = 0
  loadBefore: number[] = []
  loadAfter: number[] = []
  storeHits = 0
  storeMisses = 0
  bytesUploaded = 0
  fallbacks = 0
  tokensFullyDropped = 0

  /** Adds one batch. */
  add(t: BatchTelemetry): this {
    this.batches++
    this.tokens += t.tokens
    this.pairsBefore += t.pairsBefore
    this.droppedPairs += t.droppedPairs
    this.reroutedPairs += t.reroutedPairs
    this.addedPairs += t.addedPairs
    this.gateMassKeptSum += t.gateMassKept
    this.maxMeanBeforeSum += t.maxMeanBefore
    this.maxMeanAfterSum += t.maxMeanAfter
    this.maxMeanBeforeMax = Math.max(this.maxMeanBeforeMax, t.maxMeanBefore)
    this.maxMeanAfterMax = Math.max(this.maxMeanAfterMax, t.maxMeanAfter)
    const bBefore = balancedness(t.loadBefore)
    const bAfter = balancedness(t.loadAfter)
    this.balancednessBeforeSum += bBefore
    this.balancednessAfterSum += bAfter
    this.balancednessBeforeMin = Math.min(this.balancednessBeforeMin, bBefore)
    this.balancednessAfterMin = Math.min(this.balancednessAfterMin, bAfter)
    this.totalMs += t.timings.totalMs
    if (this.loadBefore.length === 0) {
      this.loadBefore = new Array(t.loadBefore.length).fill(0)
      this.loadAfter = new Array(t.loadAfter.length).fill(0)
    }
    t.loadBefore.forEach((l, e) => (this.loadBefore[e] += l))
    t.loadAfter.forEach((l, e) => (this.loadAfter[e] += l))
    if (t.store) {
      this.storeHits += t.store.hits
      this.storeMisses += t.store.misses
      this.bytesUploaded += t.store.bytesUploaded
    }
    if (t.fallback) this.fallbacks++
    this.tokensFullyDropped += t.tokensFullyDropped
    return this
  }

  /** A JSON-friendly summary. */
  summary() {
    const n = Math.max(1, this.batches)
    return {
      batches: this.batches,
      tokens: this.tokens,
      pairs: this.pairsBefore,
      droppedPairs: this.droppedPairs,
      droppedFraction: this.pairsBefore === 0 ? 0 : this.droppedPairs / this.pairsBefore,
      reroutedPairs: this.reroutedPairs,
      addedPairs: this.addedPairs,
      gateMassKept: this.gateMassKeptSum / n,
      maxMeanBefore: { mean: this.maxMeanBeforeSum / n, max: this.maxMeanBeforeMax },
      maxMeanAfter: { mean: this.maxMeanAfterSum / n, max: this.maxMeanAfterMax },
      /** vLLM's balancedness (mean ÷ max expert load) per batch: mean over batches and worst batch. */
      balancedness: {
        before: { mean: this.balancednessBeforeSum / n, min: this.balancednessBeforeMin },
        after: { mean: this.balancednessAfterSum / n, min: this.balancednessAfterMin },
      },
      loadBefore: this.loadBefore,
      loadAfter: this.loadAfter,
      store: this.storeHits + this.storeMisses > 0
        ? { hits: this.storeHits, misses: this.storeMisses, hitRate: this.storeHits / (this.storeHits + this.storeMisses), bytesUploaded: this.bytesUploaded }
        : undefined,
      fallbacks: this.fallbacks,
      tokensFullyDropped: this.tokensFullyDropped,
      totalMs: this.totalMs,
    }
  }
}
