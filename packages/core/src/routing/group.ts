/**
 * Grouping (token, expert) pairs by expert: the one counting sort behind every dispatcher
 * (core's `exact-size`, dynamic and static gating, C2R's plans) and the backends' host plans.
 */
import type { Routing } from '../types.js'

/** Pairs grouped by expert: rows `offsets[e] .. offsets[e+1]` belong to expert e. */
export interface ExpertGroups {
  /** experts+1 row offsets. */
  readonly offsets: Int32Array
  /** Rows per expert. */
  readonly counts: Int32Array
  /** Token of each row. */
  readonly rowToken: Int32Array
  /** Combine weight of each row. */
  readonly rowWeight: Float32Array
  /** Slot (within the token) each row came from. */
  readonly rowSlot: Int32Array
}

/**
 * Stable counting sort of the routing's non-empty slots by expert, O(T·slots + E): within an
 * expert, rows are in token order, then slot order.
 * @example
 * const g = groupByExpert(routing)
 * for (let r = g.offsets[e]; r < g.offsets[e + 1]; r++) use(g.rowToken[r], g.rowWeight[r])
 */
export function groupByExpert(routing: Pick<Routing, 'tokens' | 'experts' | 'slots' | 'expertIds' | 'weights'>): ExpertGroups {
  const { tokens, experts, slots, expertIds, weights } = routing
  const counts = new Int32Array(experts)
  for (let i = 0; i < tokens * slots; i++) if (expertIds[i] >= 0) counts[expertIds[i]]++
  const offsets = new Int32Array(experts + 1)
  for (let e = 0; e < experts; e++) offsets[e + 1] = offsets[e] + counts[e]
  const rows = offsets[experts]
  const rowToken = new Int32Array(rows)
  const rowWeight = new Float32Array(rows)
  const rowSlot = new Int32Array(rows)
  const cursor = offsets.slice(0, experts)
  for (let t = 0; t < tokens; t++) {
    for (let j = 0; j < slots; j++) {
      const e = expertIds[t * slots + j]
      if (e < 0) continue
      const r = cursor[e]++
      rowToken[r] = t
      rowWeight[r] = weights[t * slots + j]
      rowSlot[r] = j
    }
  }
  return { offsets, counts, rowToken, rowWeight, rowSlot }
}
