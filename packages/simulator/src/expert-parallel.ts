/**
 * What one routing costs under expert parallelism: rows per device, each device's expert
 * time from a cost model, all-to-all bytes and time from a link model, and the
 * communication metrics of Occult (C_T, intra-collaboration). Pure and O(T·k²).
 */
import { ErrorCodes, MoeError, type ModelShape, type PlacementMap, type Routing } from '@moe-route/core'
import type { CostModel } from './cost-model.js'
import { allToAllMs, type LinkModel } from './link-model.js'

/** Environment of {@link evaluateRouting}. */
export interface ExpertParallelEnv {
  readonly placement: PlacementMap
  readonly shape: ModelShape
  readonly cost: CostModel
  readonly link: LinkModel
  /** Bytes per activation element on the wire (default 2, bf16). */
  readonly activationBytes?: number
  /**
   * One copy of a token per destination device, shared by its co-located experts (Occult's
   * SFD state; default true). false: one copy per (token, expert) pair (standard all-to-all).
   */
  readonly dedupe?: boolean
}

/** The cost of one routing. */
export interface RoutingCost {
  /** Rows (token replicas computed) per device. A replicated expert's rows are split round-robin by token. */
  readonly deviceRows: number[]
  /** Expert milliseconds per device (incl. the per-call overhead when it runs anything). */
  readonly deviceMs: number[]
  /** The slowest device's expert time: the straggler sets the layer. */
  readonly computeMs: number
  readonly dispatchMs: number
  readonly combineMs: number
  /** dispatch + slowest device + combine. */
  readonly latencyMs: number
  /** Pairs computed. */
  readonly pairs: number
  /** Tokens with at least one pair. */
  readonly activeTokens: number
  /** Σ over tokens of the distinct devices hosting its experts. */
  readonly deviceVisits: number
  /** C_T: deviceVisits / activeTokens (0 with no active token). */
  readonly cT: number
  /** Co-activated expert pairs of a token (i < j) on the same device, and in all. */
  readonly intraPairs: number
  readonly coPairs: number
  /** Bytes crossing devices, dispatch plus combine. */
  readonly a2aBytes: number
}

/** Device of each token: `routing.sourceDevice`, else tokens sharded contiguously over devices (data parallel). */
export function sourceDeviceOf(routing: Routing, devices: number): (t: number) => number {
  const sd = routing.sourceDevice
  if (sd) return (t) => sd[t]
  const T = routing.tokens
  return (t) => Math.min(devices - 1, Math.floor((t * devices) / Math.max(1, T)))
}

const replicaTables = new WeakMap<PlacementMap, { off: Int32Array; repDevice: Int32Array }>()

/** Replicas flattened (replica i of expert e is at off[e] + i), cached per placement object. */
function replicaTable(placement: PlacementMap): { off: Int32Array; repDevice: Int32Array } {
  let table = replicaTables.get(placement)
  if (table) return table
  const E = placement.experts
  const off = new Int32Array(E + 1)
  for (let e = 0; e < E; e++) off[e + 1] = off[e] + placement.replicas[e].length
  const repDevice = new Int32Array(off[E])
  for (let e = 0; e < E; e++) placement.replicas[e].forEach((d, i) => (repDevice[off[e] + i] = d))
  table = { off, repDevice }
  replicaTables.set(placement, table)
  return table
}

/** Costs one routing under expert parallelism. */
export function evaluateRouting(routing: Routing, env: ExpertParallelEnv): RoutingCost {
  const { placement, shape, cost, link } = env
  const D = placement.devices
  const E = routing.experts
  if (placement.experts !== E) throw new MoeError(ErrorCodes.SHAPE_MISMATCH, `placement covers ${placement.experts} experts, routing ${E}`)
  const dedupe = env.dedupe ?? true
  const bytes = shape.hidden * (env.activationBytes ?? 2)
  const { off, repDevice } = replicaTable(placement)
  const repRows = new Float64Array(off[E])
  const deviceRows = new Array<number>(D).fill(0)
  const sent = new Float64Array(D)
  const recv = new Float64Array(D)
  const seen = new Int32Array(D).fill(-1)
  const tokDev = new Int32Array(routing.slots)
  const src = sourceDeviceOf(routing, D)
  const { tokens, slots, expertIds } = routing
  let pairs = 0
  let active = 0
  let visits = 0
  let intra = 0
  let co = 0
  for (let t = 0; t < tokens; t++) {
    const s = src(t)
    let n = 0
    let nd = 0
    for (let j = 0; j < slots; j++) {
      const e = expertIds[t * slots + j]
      if (e < 0) continue
      const r = off[e + 1] - off[e]
      const ri = off[e] + (r === 1 ? 0 : t % r)
      const d = repDevice[ri]
      repRows[ri]++
      deviceRows[d]++
      for (let a = 0; a < n; a++) if (tokDev[a] === d) intra++
      co += n
      tokDev[n++] = d
      if (seen[d] !== t) {
        seen[d] = t
        nd++
        if (dedupe && d !== s) {
          sent[s] += bytes
          recv[d] += bytes
        }
      }
      if (!dedupe && d !== s) {
        sent[s] += bytes
        recv[d] += bytes
      }
    }
    pairs += n
    if (n > 0) {
      active++
      visits += nd
    }
  }
  const deviceMs = new Array<number>(D).fill(0)
  for (let e = 0; e < E; e++) {
    for (let i = off[e]; i < off[e + 1]; i++) if (repRows[i] > 0) deviceMs[repDevice[i]] += cost.expertMs(repRows[i], shape)
  }
  return {
    ...timing(deviceRows, deviceMs, sent, recv, cost, link),
    pairs,
    activeTokens: active,
    deviceVisits: visits,
    cT: active === 0 ? 0 : visits / active,
    intraPairs: intra,
    coPairs: co,
  }
}

/** Per-call overhead on busy devices, the slowest device, all-to-all times and bytes (shared by both cost paths). */
function timing(deviceRows: number[], deviceMs: number[], sent: Float64Array, recv: Float64Array, cost: CostModel, link: LinkModel) {
  for (let d = 0; d < deviceRows.length; d++) if (deviceRows[d] > 0) deviceMs[d] += cost.callOverheadMs
  const computeMs = Math.max(0, ...deviceMs)
  const dispatchMs = allToAllMs(link, sent, recv)
  const combineMs = allToAllMs(link, recv, sent)
  let a2a = 0
  for (const x of sent) a2a += x
  return { deviceRows, deviceMs, computeMs, dispatchMs, combineMs, latencyMs: dispatchMs + computeMs + combineMs, a2aBytes: 2 * a2a }
}

/** Pairs of `original` absent from `final` (same tokens): Eq. 11's numerator. O(T·slots). */
export function droppedPairs(original: Routing, final: Routing): number {
  if (final.expertIds === original.expertIds) return 0
  const mark = new Int32Array(Math.max(original.experts, final.experts)).fill(-1)
  const fs = final.slots
  const os = original.slots
  let dropped = 0
  for (let t = 0; t < original.tokens; t++) {
    for (let i = 0; i < fs; i++) {
      const e = final.expertIds[t * fs + i]
      if (e >= 0) mark[e] = t
    }
    for (let j = 0; j < os; j++) {
      const e = original.expertIds[t * os + j]
      if (e >= 0 && mark[e] !== t) dropped++
    }
  }
  return dropped
}

/**
 * The load model for counts-only records (an engine's per-step expert counts, no per-token
 * ids): rows per device from `load[e]` pairs split over e's replicas as round-robin dispatch
 * would (⌊n/r⌋, the first n mod r replicas one more), expert time from the cost model, and an
 * all-to-all estimate that assumes tokens spread evenly over source devices and one copy per
 * pair (no per-token dedupe is knowable): device d receives rows_d·(D−1)/D and every device
 * sends Σ rows/D·(D−1)/D. C_T and intra-collaboration are unknown (NaN).
 */
export function evaluateLoads(load: ArrayLike<number>, tokens: number, env: ExpertParallelEnv): RoutingCost {
  const { placement, shape, cost, link } = env
  const D = placement.devices
  const E = placement.experts
  if (load.length !== E) throw new MoeError(ErrorCodes.SHAPE_MISMATCH, `load covers ${load.length} experts, the placement ${E}`)
  const bytes = shape.hidden * (env.activationBytes ?? 2)
  const deviceRows = new Array<number>(D).fill(0)
  const deviceMs = new Array<number>(D).fill(0)
  let pairs = 0
  for (let e = 0; e < E; e++) {
    const n = load[e]
    if (!Number.isInteger(n) || n < 0) throw new MoeError(ErrorCodes.INPUT_INVALID, `load of expert ${e} must be an integer ≥ 0, got ${n}`)
    pairs += n
    const reps = placement.replicas[e]
    reps.forEach((d, i) => {
      const rows = Math.floor(n / reps.length) + (i < n % reps.length ? 1 : 0)
      deviceRows[d] += rows
      if (rows > 0) deviceMs[d] += cost.expertMs(rows, shape)
    })
  }
  const total = deviceRows.reduce((a, b) => a + b, 0)
  const sent = new Float64Array(D).fill(((total / D) * (D - 1)) / D * bytes)
  const recv = Float64Array.from(deviceRows, (r) => ((r * (D - 1)) / D) * bytes)
  return {
    ...timing(deviceRows, deviceMs, sent, recv, cost, link),
    pairs,
    activeTokens: tokens,
    deviceVisits: Number.NaN,
    cT: Number.NaN,
    intraPairs: 0,
    coPairs: 0,
  }
}
