/**
 * The routing policy the device-side layer applies, and its CPU reference (the oracle of the
 * top-k, capacity-drop and grouping kernels, and the fallback when the device is lost).
 */
import { ErrorCodes, MoeError, expertCapacity, type DispatchPlan, type DroppedPair, type Routing } from '@moe-route/core'
import type { SelectMode } from './kernels/dispatch/dispatch.program.js'

/**
 * What happens between top-k and the experts in {@link WebGpuMoeLayer.forward}.
 * - `mode: 'dynamic'` (default): exact-size groups; with `capacityFactor` γ, capacity-aware
 *   token drop with score priority: C = ceil(γ·k·T/E), per expert the C highest-scoring pairs
 *   (ties: lower token) are kept.
 * - `mode: 'static'`: GShard/fairseq static gating: every expert gets C = ceil(γ·k·T/E) rows
 *   (γ default 1), pairs take rows in token order, overflow is dropped, empty rows are zero
 *   padding that is still computed.
 */
export interface LayerPolicy {
  readonly mode?: 'dynamic' | 'static'
  /** γ; null or absent = no drop (dynamic) / 1.0 (static). */
  readonly capacityFactor?: number | null
  /** Exact per-expert capacity; wins over `capacityFactor`. */
  readonly capacity?: number
}

/** The select rule and capacity a policy resolves to for one batch. */
export interface ResolvedPolicy {
  readonly select: SelectMode
  readonly isStatic: boolean
  /** Per-expert capacity, or null (no drop). */
  readonly capacity: number | null
}

/** Resolves a policy for T tokens (C = ceil(γ·k·T/E), as core's `expertCapacity`). */
export function resolvePolicy(policy: LayerPolicy | undefined, tokens: number, topK: number, experts: number): ResolvedPolicy {
  const mode = policy?.mode ?? 'dynamic'
  if (mode !== 'dynamic' && mode !== 'static') throw new MoeError(ErrorCodes.INPUT_INVALID, `policy.mode must be 'dynamic' or 'static', got ${String(mode)}`)
  const gamma = policy?.capacityFactor ?? (mode === 'static' ? 1 : null)
  if (gamma !== null && !(gamma > 0 && Number.isFinite(gamma))) {
    throw new MoeError(ErrorCodes.INPUT_INVALID, `policy.capacityFactor must be a positive number, got ${gamma}`)
  }
  let capacity: number | null = policy?.capacity ?? (gamma === null ? null : expertCapacity(gamma, tokens, topK, experts, 'ceil'))
  if (capacity !== null && !(Number.isInteger(capacity) && capacity >= 0)) {
    throw new MoeError(ErrorCodes.INPUT_INVALID, `policy.capacity must be a non-negative integer, got ${capacity}`)
  }
  if (mode === 'static') return { select: 'static', isStatic: true, capacity: capacity ?? 0 }
  return { select: capacity === null ? 'all' : 'capacity', isStatic: false, capacity }
}

/** A CPU-built plan plus which router pairs survived (tokens × k, 1 = computed). */
export interface ReferenceDispatch {
  readonly plan: DispatchPlan
  readonly kept: Uint8Array
}

/**
 * CPU reference of the device dispatch: the same kept pairs, row order and padding as the
 * select/offsets/scatter kernels. `routing` must have slots == topK (a router's output).
 */
export function referenceDispatch(routing: Routing, policy: ResolvedPolicy, policyName = 'webgpu-layer'): ReferenceDispatch {
  const { tokens: T, experts: E, slots: k, expertIds, weights, scores } = routing
  const cand: number[][] = Array.from({ length: E }, () => [])
  for (let t = 0; t < T; t++) for (let j = 0; j < k; j++) if (expertIds[t * k + j] >= 0) cand[expertIds[t * k + j]].push(t)
  const C = policy.capacity ?? Infinity
  const keptTokens = cand.map((list, e) => {
    if (policy.select === 'all') return list
    if (policy.select === 'static') return list.slice(0, C)
    const sorted = [...list].sort((a, b) => scores[b * E + e] - scores[a * E + e] || a - b)
    const keep = new Set(sorted.slice(0, C))
    return list.filter((t) => keep.has(t))
  })
  const counts = new Int32Array(E)
  const offsets = new Int32Array(E + 1)
  for (let e = 0; e < E; e++) {
    counts[e] = keptTokens[e].length
    offsets[e + 1] = offsets[e] + (policy.isStatic ? (policy.capacity ?? 0) : counts[e])
  }
  const rows = offsets[E]
  const rowToken = new Int32Array(rows).fill(-1)
  const rowWeight = new Float32Array(rows)
  const kept = new Uint8Array(T * k)
  for (let e = 0; e < E; e++) {
    keptTokens[e].forEach((t, i) => {
      let slot = 0
      for (let j = 0; j < k; j++) if (expertIds[t * k + j] === e) slot = j
      rowToken[offsets[e] + i] = t
      rowWeight[offsets[e] + i] = weights[t * k + slot]
      kept[t * k + slot] = 1
    })
  }
  const dropped: DroppedPair[] = []
  for (let t = 0; t < T; t++) {
    for (let j = 0; j < k; j++) {
      const e = expertIds[t * k + j]
      if (e >= 0 && !kept[t * k + j]) {
        dropped.push({ token: t, expert: e, weight: weights[t * k + j], reason: policy.isStatic ? 'static-overflow' : 'capacity', policy: policyName })
      }
    }
  }
  const plan: DispatchPlan = {
    mode: policy.isStatic ? 'static' : 'dynamic',
    tokens: T,
    experts: E,
    offsets,
    counts,
    rowToken,
    rowWeight,
    capacity: policy.isStatic ? policy.capacity : null,
    paddingRows: rows - counts.reduce((a, b) => a + b, 0),
    dropped: policy.isStatic ? dropped : [],
    traffic: { devices: 1, sendRows: new Int32Array([rows]), bytesCrossDevice: 0 },
  }
  return { plan, kept }
}
