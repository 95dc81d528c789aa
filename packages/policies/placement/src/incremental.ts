/**
 * Incremental rebalancing under a migration budget: starting from the placement in force,
 * move at most `maxMoves` expert weights (a slot taking a different expert costs one copy)
 * to lower the heaviest device's load, and report how much balance that leaves on the
 * table against an unconstrained rebalance. Serving engines (EPLB in vLLM/SGLang) recompute
 * the whole placement; here the number of weights moved per rebalance is bounded.
 */
import { ErrorCodes, MoeError, type PlacementMap } from '@moe-route/core'
import { placementFromPhy2log, phy2logFromPlacement, rebalanceExperts } from './eplb.js'

/** Options of {@link rebalanceIncremental}. */
export interface IncrementalOptions {
  /** Most expert weights copied between devices (slots whose expert changes). */
  readonly maxMoves: number
  /** Bytes of one expert's weights, to report bytes moved (default 0: not reported). */
  readonly bytesPerExpert?: number
}

/** One step taken: slot `slot` on `device` now holds `to` instead of `from`. */
export interface SlotMove {
  readonly slot: number
  readonly device: number
  readonly from: number
  readonly to: number
}

/** What {@link rebalanceIncremental} returns. */
export interface IncrementalResult {
  /** The new placement (same devices and slots per device). */
  readonly placement: PlacementMap
  /** Its phy2log row (slots GPU-major). */
  readonly phy2log: number[]
  /** Slots whose expert differs from the starting placement (= weights copied). */
  readonly moved: number
  readonly bytesMoved: number
  /** Steps in the order they were taken (a slot may appear more than once). */
  readonly steps: readonly SlotMove[]
  /** max/mean device load of the starting placement under `load`. */
  readonly before: number
  /** max/mean device load after the budgeted moves. */
  readonly after: number
  /** max/mean of the best unconstrained rebalance found (EPLB global, or unbudgeted search). */
  readonly unconstrained: number
  /** Slots that differ between the start and that unconstrained placement. */
  readonly unconstrainedMoves: number
  /** after − unconstrained: the balance given up for the budget (≥ 0 up to search quality). */
  readonly balanceGivenUp: number
}

/**
 * Greedy local search over slot changes: each step takes the swap (two slots on different
 * devices exchange experts, 2 copies) or replacement (a slot of an expert with several
 * replicas takes another expert, 1 copy) with the largest drop of the maximum device load
 * per weight copied (ties: the sum of squared device loads), while the budget allows.
 * Every expert keeps at least one replica. O(steps · S · (S + E)) for S slots.
 * @example
 * const r = rebalanceIncremental(current, loadsLastWindow, { maxMoves: 4 })
 * console.log(r.after, r.unconstrained, r.balanceGivenUp)
 */
export function rebalanceIncremental(current: PlacementMap, load: readonly number[], options: IncrementalOptions): IncrementalResult {
  const { maxMoves } = options
  if (!Number.isInteger(maxMoves) || maxMoves < 0) throw new MoeError(ErrorCodes.INPUT_INVALID, `maxMoves must be an integer ≥ 0, got ${maxMoves}`, { path: '/maxMoves' })
  if (load.length !== current.experts) throw new MoeError(ErrorCodes.SHAPE_MISMATCH, `load has ${load.length} experts, expected ${current.experts}`, { path: '/load' })
  load.forEach((v, e) => {
    if (!Number.isFinite(v) || v < 0) throw new MoeError(ErrorCodes.INPUT_INVALID, `load of expert ${e} must be finite and ≥ 0, got ${v}`, { path: `/load/${e}` })
  })
  const start = phy2logFromPlacement(current)
  const D = current.devices
  const budgeted = search(start, D, load, maxMoves)
  const free = search(start, D, load, Number.MAX_SAFE_INTEGER)
  const eplb = placementFromPhy2log(rebalanceExperts([load], { numReplicas: start.length, numGroups: 1, numNodes: 1, numGpus: D }).phy2log[0], D, current.experts)
  const eplbRow = phy2logFromPlacement(eplb)
  const eplbScore = maxOverMean(deviceLoads(eplbRow, D, load))
  const freeScore = maxOverMean(deviceLoads(free.row, D, load))
  const [refRow, refScore] = eplbScore < freeScore ? [eplbRow, eplbScore] : [free.row, freeScore]
  const before = maxOverMean(deviceLoads(start, D, load))
  const after = maxOverMean(deviceLoads(budgeted.row, D, load))
  return {
    placement: { ...placementFromPhy2log(budgeted.row, D, current.experts), strategy: `${current.strategy}+incremental` },
    phy2log: budgeted.row,
    moved: diff(start, budgeted.row),
    bytesMoved: diff(start, budgeted.row) * (options.bytesPerExpert ?? 0),
    steps: budgeted.steps,
    before,
    after,
    unconstrained: refScore,
    unconstrainedMoves: diff(start, refRow),
    balanceGivenUp: Math.max(0, after - refScore),
  }
}

const EPS = 1e-12

function search(start: readonly number[], D: number, load: readonly number[], maxMoves: number) {
  const row = [...start]
  const S = row.length
  const per = S / D
  const E = load.length
  const cnt = new Array<number>(E).fill(0)
  for (const e of row) cnt[e]++
  const dev = (s: number) => Math.floor(s / per)
  const dl = deviceLoads(row, D, load)
  const steps: SlotMove[] = []
  let moved = 0
  const changeCost = (s: number, to: number) => (start[s] === to ? 0 : 1) - (start[s] === row[s] ? 0 : 1)
  for (;;) {
    const curMax = Math.max(...dl)
    const curSq = dl.reduce((a, v) => a + v * v, 0)
    let best: { gainMax: number; gainSq: number; apply: () => void } | null = null
    const consider = (cost: number, next: readonly number[], apply: () => void) => {
      if (moved + cost > maxMoves) return
      const m = Math.max(...next)
      if (m > curMax + EPS) return
      const sq = next.reduce((a, v) => a + v * v, 0)
      const c = Math.max(cost, 0.5)
      const gainMax = (curMax - m) / c
      const gainSq = (curSq - sq) / c
      if (gainMax <= EPS && gainSq <= EPS * Math.max(1, curSq)) return
      if (!best || gainMax > best.gainMax + EPS || (Math.abs(gainMax - best.gainMax) <= EPS && gainSq > best.gainSq)) best = { gainMax, gainSq, apply }
    }
    const hot = dl.indexOf(curMax)
    for (let a = hot * per; a < (hot + 1) * per; a++) {
      const ea = row[a]
      // Swaps with slots on other devices.
      for (let b = 0; b < S; b++) {
        const eb = row[b]
        const db = dev(b)
        if (db === hot || eb === ea) continue
        const next = [...dl]
        const delta = load[eb] / cnt[eb] - load[ea] / cnt[ea]
        next[hot] += delta
        next[db] -= delta
        consider(changeCost(a, eb) + changeCost(b, ea), next, () => {
          row[a] = eb
          row[b] = ea
          steps.push({ slot: a, device: hot, from: ea, to: eb }, { slot: b, device: db, from: eb, to: ea })
        })
      }
    }
    // Replacements: a slot of a replicated expert takes another replica of a hot expert.
    const hotExperts = new Set(row.slice(hot * per, (hot + 1) * per))
    for (let a = 0; a < S; a++) {
      const ea = row[a]
      if (cnt[ea] < 2) continue
      for (const eb of hotExperts) {
        if (eb === ea) continue
        const next = [...dl]
        for (let s = 0; s < S; s++) {
          if (row[s] === ea) next[dev(s)] += load[ea] / (cnt[ea] - 1) - load[ea] / cnt[ea]
          if (row[s] === eb) next[dev(s)] += load[eb] / (cnt[eb] + 1) - load[eb] / cnt[eb]
        }
        next[dev(a)] += load[eb] / (cnt[eb] + 1) - load[ea] / (cnt[ea] - 1)
        consider(changeCost(a, eb), next, () => {
          row[a] = eb
          cnt[ea]--
          cnt[eb]++
          steps.push({ slot: a, device: dev(a), from: ea, to: eb })
        })
      }
    }
    if (!best) break
    ;(best as { apply: () => void }).apply()
    moved = diff(start, row)
    const fresh = deviceLoads(row, D, load)
    for (let d = 0; d < D; d++) dl[d] = fresh[d]
  }
  return { row, steps }
}

function deviceLoads(row: readonly number[], D: number, load: readonly number[]): number[] {
  const per = row.length / D
  const cnt = new Array<number>(load.length).fill(0)
  for (const e of row) cnt[e]++
  const out = new Array<number>(D).fill(0)
  row.forEach((e, s) => (out[Math.floor(s / per)] += load[e] / cnt[e]))
  return out
}

function maxOverMean(dl: readonly number[]): number {
  const sum = dl.reduce((a, v) => a + v, 0)
  return sum === 0 ? 0 : Math.max(...dl) / (sum / dl.length)
}

function diff(a: readonly number[], b: readonly number[]): number {
  let n = 0
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) n++
  return n
}
