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

/**
 * The counts a batch's telemetry is made of: what {@link computeTelemetry} derives from host
 * routings, and what a device pipeline computes on the GPU and reads back (a few hundred
 * bytes) so that both produce the same {@link BatchTelemetry}.
 */
export interface TelemetryCounts {
  readonly tokens: number
  /** Router pairs. */
  readonly pairsBefore: number
  /** Distinct (token, expert) pairs computed. */
  readonly pairsAfter: number
  /** Router pairs not computed. */
  readonly dropped: number
  /** Computed pairs the router did not choose. */
  readonly added: number
  readonly tokensFullyDropped: number
  /** Σ router weight, and Σ final weight of the router's pairs that were computed. */
  readonly massBefore: number
  readonly massKept: number
  readonly loadBefore: readonly number[]
  /** Real rows per expert in the plan. */
  readonly loadAfter: readonly number[]
  readonly policies: readonly PolicyTelemetry[]
  /** Removed pairs by (plugin, reason), when the pipeline knows them (the host path always does). */
  readonly droppedBy?: readonly DropCount[]
  readonly dispatch: BatchTelemetry['dispatch']
}

/** The telemetry record of a batch from its counts (shared by host and device pipelines). */
export function telemetryFromCounts(
  batchId: number,
  c: TelemetryCounts,
  placement: PlacementMap,
  timings: BatchTimings,
  extra: { store?: StoreTelemetry; backend?: string; fallback?: BatchTelemetry['fallback']; hostRoundTrips?: Readonly<Record<string, number>> } = {},
): BatchTelemetry {
  const loadBefore = Array.from(c.loadBefore)
  const loadAfter = Array.from(c.loadAfter)
  let rerouted = 0
  for (const p of c.policies) rerouted += p.rerouted
  return {
    batchId,
    tokens: c.tokens,
    pairsBefore: c.pairsBefore,
    pairsAfter: c.pairsAfter,
    loadBefore,
    loadAfter,
    maxMeanBefore: maxOverMean(loadBefore),
    maxMeanAfter: maxOverMean(loadAfter),
    droppedPairs: c.dropped,
    droppedFraction: c.pairsBefore === 0 ? 0 : c.dropped / c.pairsBefore,
    reroutedPairs: rerouted,
    addedPairs: c.added,
    gateMassKept: c.massBefore === 0 ? 1 : c.massKept / c.massBefore,
    tokensFullyDropped: c.tokensFullyDropped,
    policies: c.policies,
    ...(c.droppedBy ? { droppedBy: c.droppedBy } : {}),
    dispatch: c.dispatch,
    ...(placement.devices > 1 ? { deviceLoad: deviceLoad(loadAfter, placement) } : {}),
    ...(extra.store ? { store: extra.store } : {}),
    ...(extra.backend ? { backend: extra.backend } : {}),
    ...(extra.fallback ? { fallback: extra.fallback } : {}),
    ...(extra.hostRoundTrips && Object.keys(extra.hostRoundTrips).length > 0 ? { hostRoundTrips: extra.hostRoundTrips } : {}),
    timings,
  }
}

/** Per-policy telemetry of a policy's outcome. */
export function policyTelemetry(policy: string, outcome: PolicyOutcome): PolicyTelemetry {
  return {
    policy,
    dropped: outcome.dropped.length,
    rerouted: outcome.rerouted?.length ?? 0,
    added: outcome.added?.length ?? 0,
    capacity: outcome.capacity ?? null,
    ...(outcome.skipped ? { skipped: outcome.skipped } : {}),
    ...(outcome.fallback ? { fallback: outcome.fallback } : {}),
  }
}

/** The counts of one batch from its host routings and plan. O(T·(k+E)). */
export function telemetryCounts(input: Pick<TelemetryInput, 'original' | 'plan' | 'outcomes'>): TelemetryCounts {
  const { original, plan } = input
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
  const isOriginal = new Uint8Array(tokens * experts)
  for (let t = 0; t < tokens; t++) {
    for (let j = 0; j < original.slots; j++) {
      const e = original.expertIds[t * original.slots + j]
      if (e < 0) continue
      pairsBefore++
      isOriginal[t * experts + e] = 1
      const w = original.weights[t * original.slots + j]
      massBefore += w
      const f = finalWeight[t * experts + e]
      if (Number.isNaN(f)) dropped++
      else massKept += f
    }
  }
  let pairsAfter = 0
  let added = 0
  const tokenKept = new Uint8Array(tokens)
  for (let i = 0; i < finalWeight.length; i++) {
    if (Number.isNaN(finalWeight[i])) continue
    pairsAfter++
    tokenKept[Math.floor(i / experts)] = 1
    if (!isOriginal[i]) added++
  }
  let fullyDropped = 0
  for (let t = 0; t < tokens; t++) if (!tokenKept[t]) fullyDropped++
  return {
    tokens,
    pairsBefore,
    pairsAfter,
    dropped,
    added,
    tokensFullyDropped: fullyDropped,
    massBefore,
    massKept,
    loadBefore: expertLoad(original),
    loadAfter: Array.from(plan.counts),
    policies: input.outcomes.map(({ policy, outcome }) => policyTelemetry(policy, outcome)),
    droppedBy: countDrops([...input.outcomes.map((o) => o.outcome.dropped), plan.dropped]),
    dispatch: {
      mode: plan.mode,
      slotsComputed: plan.rowToken.length,
      paddingRows: plan.paddingRows,
      bytesCrossDevice: plan.traffic.bytesCrossDevice,
      capacity: plan.capacity,
      droppedPairs: plan.dropped.length,
    },
  }
}

/** Computes the telemetry record of one batch from its host routings and plan. O(T·(k+E)). */
export function computeTelemetry(input: TelemetryInput): BatchTelemetry {
  return telemetryFromCounts(input.batchId, telemetryCounts(input), input.placement, input.timings, {
    ...(input.store ? { store: input.store } : {}),
    ...(input.backend ? { backend: input.backend } : {}),
    ...(input.fallback ? { fallback: input.fallback } : {}),
  })
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

/**
 * Slots computed ÷ pairs asked of the dispatcher (real rows plus the pairs it dropped): the
 * waste factor of static capacity (1 for exact groups, and when nothing was asked or computed).
 * The same definition as `dispatchStats` of `@moe-route/policy-dynamic-gating` per batch.
 */
export function wasteFactor(slots: number, paddingRows: number, dispatcherDropped: number): number {
  const asked = slots - paddingRows + dispatcherDropped
  return asked > 0 ? slots / asked : slots === 0 ? 1 : Number.POSITIVE_INFINITY
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
  balancednessBeforeMin = Number.POSITIVE_INFINITY
  balancednessAfterMin = Number.POSITIVE_INFINITY
  totalMs = 0
  loadBefore: number[] = []
  loadAfter: number[] = []
  storeHits = 0
  storeMisses = 0
  bytesUploaded = 0
  storeEvictions = 0
  storeUploadMs = 0
  fallbacks = 0
  tokensFullyDropped = 0
  dispatchMode = ''
  slotsComputed = 0
  paddingRows = 0
  bytesCrossDevice = 0
  /** Pairs the dispatcher dropped; null while no batch reported the count. */
  dispatcherDropped: number | null = null
  maxCapacity: number | null = null

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
      this.storeEvictions += t.store.evictions
      this.storeUploadMs += t.store.uploadMs
    }
    const d = t.dispatch
    this.dispatchMode = d.mode
    this.slotsComputed += d.slotsComputed
    this.paddingRows += d.paddingRows
    this.bytesCrossDevice += d.bytesCrossDevice
    if (d.droppedPairs !== undefined) this.dispatcherDropped = (this.dispatcherDropped ?? 0) + d.droppedPairs
    if (d.capacity !== null) this.maxCapacity = Math.max(this.maxCapacity ?? 0, d.capacity)
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
        before: { mean: this.balancednessBeforeSum / n, min: this.batches ? this.balancednessBeforeMin : 0 },
        after: { mean: this.balancednessAfterSum / n, min: this.batches ? this.balancednessAfterMin : 0 },
      },
      loadBefore: this.loadBefore,
      loadAfter: this.loadAfter,
      store: this.storeHits + this.storeMisses > 0
        ? {
            hits: this.storeHits,
            misses: this.storeMisses,
            hitRate: this.storeHits / (this.storeHits + this.storeMisses),
            evictions: this.storeEvictions,
            bytesUploaded: this.bytesUploaded,
            uploadMs: this.storeUploadMs,
          }
        : undefined,
      /**
       * The dispatcher over all batches: slots computed (padding included), padding rows, waste
       * factor (slots ÷ pairs asked of the dispatcher, i.e. kept rows plus its own drops; 1 for
       * exact groups), pairs it dropped (null when the backend does not count them), bytes
       * crossing devices and the largest per-expert capacity (null for exact groups).
       */
      dispatch: {
        mode: this.dispatchMode,
        slots: this.slotsComputed,
        paddingRows: this.paddingRows,
        wasteFactor: wasteFactor(this.slotsComputed, this.paddingRows, this.dispatcherDropped ?? 0),
        droppedPairs: this.dispatcherDropped,
        bytesCrossDevice: this.bytesCrossDevice,
        capacity: this.maxCapacity,
      },
      fallbacks: this.fallbacks,
      tokensFullyDropped: this.tokensFullyDropped,
      totalMs: this.totalMs,
    }
  }
}
