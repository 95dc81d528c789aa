/**
 * The expert-parallel simulator: a workload of batches (core TokenBatch with logits or
 * scores, or ready Routing values) through a router, a policy stack and a placement on D
 * devices; per batch, expert time per device (cost model), all-to-all time (link model),
 * layer latency set by the slowest device, and the same for a baseline stack, for speedups.
 */
import {
  ErrorCodes,
  MoeError,
  mixSeed,
  mulberry32,
  softmaxTopK,
  type ModelShape,
  type PlacementMap,
  type PolicyOutcome,
  type Router,
  type Routing,
  type RoutingPolicy,
  type TokenBatch,
} from '@moe-route/core'
import { quantileSorted } from '@moe-route/core'
import { H100_HF_GROUPED_MM } from './calibration/default.js'
import { costModelFromCalibration, type CostModel } from './cost-model.js'
import { droppedPairs, evaluateLoads, evaluateRouting, type RoutingCost } from './expert-parallel.js'
import { checkLink, NVLINK4_H100, type LinkModel } from './link-model.js'

/** Options of {@link createSimulator}. */
export interface SimulatorOptions {
  readonly model: ModelShape
  /** Where experts live; its `devices` is the device count D. */
  readonly placement: PlacementMap
  /** The policy stack under test, applied in order (e.g. capacity-drop's `create(...)` output). */
  readonly policies?: readonly RoutingPolicy[]
  /** The stack speedups are measured against (default: none, the router's routing as is). */
  readonly baseline?: readonly RoutingPolicy[]
  /** Router for TokenBatch inputs (default: softmax top-k with the model's k and normalizeTopK). */
  readonly router?: Router
  /** Expert time (default: the H100 calibration derived from peer numbers; see its provenance). */
  readonly cost?: CostModel
  /** Interconnect (default: NVLink 4 nominal figures). */
  readonly link?: LinkModel
  /** Bytes per activation element on the wire (default 2). */
  readonly activationBytes?: number
  /** One token copy per destination device (default true); false = one per pair. */
  readonly dedupe?: boolean
  /** Seed of the policies' per-batch random streams (default 0). */
  readonly seed?: number
  /** Keep every batch's record in the result (default true; false keeps only aggregates). */
  readonly keepBatches?: boolean
}

/** One batch's simulation. */
export interface BatchSimulation {
  readonly batchId: number
  readonly tokens: number
  /** Router pairs, and pairs computed after the policies. */
  readonly pairs: number
  readonly pairsAfter: number
  /** Router pairs not computed ÷ router pairs (SPEC Eq. 11). */
  readonly droppedFraction: number
  /** Rows per device after the policies. */
  readonly deviceRows: readonly number[]
  /** The heaviest device's share of rows (B.5 "load" of this batch). */
  readonly maxLoad: number
  /** Heaviest device rows ÷ mean device rows. */
  readonly maxMeanDevice: number
  readonly computeMs: number
  readonly dispatchMs: number
  readonly combineMs: number
  readonly latencyMs: number
  readonly baselineLatencyMs: number
  /** baselineLatencyMs ÷ latencyMs. */
  readonly speedup: number
  readonly cT: number
  readonly baselineCT: number
  /** Same-device share of a token's co-activated expert pairs (NaN with none). */
  readonly intraCollaboration: number
  readonly a2aBytes: number
  /** Index of the slowest device. */
  readonly straggler: number
}

/** Aggregates over a run. */
export interface SimulationSummary {
  readonly batches: number
  readonly tokens: number
  readonly devices: number
  readonly experts: number
  readonly pairs: number
  readonly droppedFraction: number
  /** B.5 Max Load: max over batches of the heaviest device's share. */
  readonly maxLoad: number
  /** B.5 Avg Max Load: mean over batches of the heaviest device's share. */
  readonly avgMaxLoad: number
  readonly baselineMaxLoad: number
  readonly baselineAvgMaxLoad: number
  /** Mean layer latency and percentiles, ms. */
  readonly latencyMs: { readonly mean: number; readonly p50: number; readonly p95: number; readonly p99: number; readonly max: number }
  readonly baselineLatencyMs: { readonly mean: number; readonly p50: number; readonly p95: number; readonly p99: number; readonly max: number }
  /** Σ baseline latency ÷ Σ latency. */
  readonly speedup: number
  /** Mean split of the latency. */
  readonly computeMs: number
  readonly communicationMs: number
  /** C_T over all tokens (token-weighted), under the stack and the baseline. */
  readonly cT: number
  readonly baselineCT: number
  readonly intraCollaboration: number
  readonly a2aBytes: number
  readonly baselineA2aBytes: number
  /** Rows per device summed over the run. */
  readonly deviceRows: readonly number[]
  /** Wall-clock seconds the simulation took, and tokens per second. */
  readonly wallSeconds: number
  readonly tokensPerSecond: number
}

/** A finished run. */
export interface SimulationResult {
  readonly summary: SimulationSummary
  /** Per-batch records (empty with keepBatches: false). */
  readonly batches: readonly BatchSimulation[]
  /** What was simulated, for reports. */
  readonly setup: {
    readonly placement: string
    readonly policies: readonly string[]
    readonly baseline: readonly string[]
    /** The calibration the cost model was built from (device, software, the block measured). */
    readonly cost: string
    readonly link: string
    readonly dedupe: boolean
    /** The layer simulated (the cost model scales its calibration to this shape). */
    readonly model?: { readonly name?: string; readonly experts: number; readonly topK: number; readonly hidden: number; readonly intermediate: number }
  }
}

/**
 * What one batch contributes to a run: its record and the sums the summary folds. A plain
 * structured-clonable value, so worker threads can make it and post it back.
 */
export interface BatchOutcome {
  readonly record: BatchSimulation
  /** The baseline's heaviest-device share. */
  readonly baselineMaxLoad: number
  readonly dropped: number
  readonly visits: number
  readonly active: number
  readonly baselineVisits: number
  readonly baselineActive: number
  readonly intraPairs: number
  readonly coPairs: number
  readonly baselineA2aBytes: number
}

/** A stateful simulator: feed batches with `step`, read `result()`. */
export interface Simulator {
  step(item: TokenBatch | Routing, batchId?: number): BatchSimulation
  /**
   * One batch's outcome without adding it to the run (pure: the same batch and id give the same
   * outcome on any thread). `absorb` adds outcomes; `step` is both.
   */
  evaluate(item: TokenBatch | Routing, batchId: number): BatchOutcome
  /** Adds a batch's outcome to the run (outcomes must come in the order the run should fold them). */
  absorb(outcome: BatchOutcome): BatchSimulation
  /**
   * The load model: one batch known only by its per-expert pair counts (an engine's counts-only
   * record). Policies need per-token routing, so this throws when the simulator has any; C_T
   * is unknown (NaN) and all-to-all is the one-copy-per-pair estimate of {@link evaluateLoads}.
   */
  stepLoads(load: ArrayLike<number>, tokens: number, batchId?: number): BatchSimulation
  result(): SimulationResult
}

/** The workloads the simulator accepts. */
export type SimulationWorkload = Iterable<TokenBatch | Routing> | AsyncIterable<TokenBatch | Routing>

/** True for a core Routing (as opposed to a TokenBatch). */
export function isRouting(item: TokenBatch | Routing): item is Routing {
  return (item as Routing).expertIds instanceof Int32Array
}

/**
 * Creates a simulator.
 * @example
 * const sim = createSimulator({ model, placement: contiguousPlacement(64, 8), policies: [capacityDrop.create({ ...capacityDrop.meta.defaultOptions, capacityFactor: 1.0 }, ctx)] })
 * for (const batch of workload.batchesSync({ tokensPerBatch: 4096, batches: 32 })) sim.step(batch)
 * console.log(sim.result().summary.speedup)
 */
export function createSimulator(options: SimulatorOptions): Simulator {
  const { model, placement } = options
  if (placement.experts !== model.experts) {
    throw new MoeError(ErrorCodes.SHAPE_MISMATCH, `placement covers ${placement.experts} experts, the model has ${model.experts}`, { path: '/placement' })
  }
  const cost = options.cost ?? costModelFromCalibration(H100_HF_GROUPED_MM)
  const link = options.link ?? NVLINK4_H100
  checkLink(link)
  const env = { placement, shape: model, cost, link, activationBytes: options.activationBytes ?? 2, dedupe: options.dedupe ?? true }
  const policies = options.policies ?? []
  const baseline = options.baseline ?? []
  const seed = options.seed ?? 0
  const keep = options.keepBatches ?? true
  const router = options.router
  const D = placement.devices
  const batches: BatchSimulation[] = []
  const latencies: number[] = []
  const baseLatencies: number[] = []
  const deviceRows = new Array<number>(D).fill(0)
  const acc = { batches: 0, tokens: 0, pairs: 0, dropped: 0, maxLoad: 0, sumMaxLoad: 0, bMaxLoad: 0, bSumMaxLoad: 0, compute: 0, comm: 0, visits: 0, active: 0, bVisits: 0, bActive: 0, intra: 0, co: 0, a2a: 0, bA2a: 0 }
  const started = performance.now()
  let nextId = 0

  const toRouting = (item: TokenBatch | Routing): Routing => {
    if (isRouting(item)) return item
    const input = {
      tokens: item.tokens,
      experts: model.experts,
      ...(item.logits ? { logits: item.logits } : {}),
      ...(item.scores ? { scores: item.scores } : {}),
      ...(item.sourceDevice ? { sourceDevice: item.sourceDevice } : {}),
      ...(item.decode ? { decode: true } : {}),
    }
    return router ? router.route(input) : softmaxTopK(input, model.topK, model.normalizeTopK)
  }
  const run = (stack: readonly RoutingPolicy[], routing: Routing, batchId: number, salt: number): Routing => {
    let r = routing
    stack.forEach((p, i) => {
      const outcome: PolicyOutcome = p.apply(r, { placement, batchId, random: mulberry32(mixSeed(seed, batchId, i, salt)) })
      r = outcome.routing
    })
    return r
  }
  const share = (c: RoutingCost) => {
    let total = 0
    let max = 0
    for (const v of c.deviceRows) {
      total += v
      if (v > max) max = v
    }
    return total === 0 ? 0 : max / total
  }

  const outcome = (id: number, tokens: number, pairs: number, dropped: number, c: RoutingCost, b: RoutingCost): BatchOutcome => {
    const maxLoad = share(c)
    let maxRows = 0
    let sumRows = 0
    for (const v of c.deviceRows) {
      sumRows += v
      if (v > maxRows) maxRows = v
    }
    const meanRows = sumRows / D
    const record: BatchSimulation = {
      batchId: id,
      tokens,
      pairs,
      pairsAfter: c.pairs,
      droppedFraction: pairs === 0 ? 0 : dropped / pairs,
      deviceRows: c.deviceRows,
      maxLoad,
      maxMeanDevice: meanRows === 0 ? 0 : maxRows / meanRows,
      computeMs: c.computeMs,
      dispatchMs: c.dispatchMs,
      combineMs: c.combineMs,
      latencyMs: c.latencyMs,
      baselineLatencyMs: b.latencyMs,
      speedup: c.latencyMs === 0 ? 1 : b.latencyMs / c.latencyMs,
      cT: c.cT,
      baselineCT: b.cT,
      intraCollaboration: c.coPairs === 0 ? Number.NaN : c.intraPairs / c.coPairs,
      a2aBytes: c.a2aBytes,
      straggler: c.deviceMs.indexOf(c.computeMs),
    }
    return {
      record,
      baselineMaxLoad: share(b),
      dropped,
      visits: c.deviceVisits,
      active: c.activeTokens,
      baselineVisits: b.deviceVisits,
      baselineActive: b.activeTokens,
      intraPairs: c.intraPairs,
      coPairs: c.coPairs,
      baselineA2aBytes: b.a2aBytes,
    }
  }

  const absorb = (o: BatchOutcome): BatchSimulation => {
    const rec = o.record
    acc.batches++
    acc.tokens += rec.tokens
    acc.pairs += rec.pairs
    acc.dropped += o.dropped
    acc.maxLoad = Math.max(acc.maxLoad, rec.maxLoad)
    acc.sumMaxLoad += rec.maxLoad
    acc.bMaxLoad = Math.max(acc.bMaxLoad, o.baselineMaxLoad)
    acc.bSumMaxLoad += o.baselineMaxLoad
    acc.compute += rec.computeMs
    acc.comm += rec.dispatchMs + rec.combineMs
    acc.visits += o.visits
    acc.active += o.active
    acc.bVisits += o.baselineVisits
    acc.bActive += o.baselineActive
    acc.intra += o.intraPairs
    acc.co += o.coPairs
    acc.a2a += rec.a2aBytes
    acc.bA2a += o.baselineA2aBytes
    rec.deviceRows.forEach((v, d) => (deviceRows[d] += v))
    latencies.push(rec.latencyMs)
    baseLatencies.push(rec.baselineLatencyMs)
    if (keep) batches.push(rec)
    nextId = Math.max(nextId, rec.batchId + 1)
    return rec
  }

  const evaluate = (item: TokenBatch | Routing, id: number): BatchOutcome => {
    const routing = toRouting(item)
    if (routing.experts !== model.experts) throw new MoeError(ErrorCodes.SHAPE_MISMATCH, `batch ${id} routes ${routing.experts} experts, the model has ${model.experts}`)
    const final = run(policies, routing, id, 0)
    const base = baseline.length === 0 ? routing : run(baseline, routing, id, 1)
    const c = evaluateRouting(final, env)
    // a stack that kept every pair as it was (shared arrays) costs what the baseline costs
    const samePairs = (x: Routing, y: Routing) => x === y || (x.expertIds === y.expertIds && x.slots === y.slots && x.sourceDevice === y.sourceDevice)
    const b = samePairs(final, base) ? c : evaluateRouting(base, env)
    const pairs = base === routing ? b.pairs : countPairs(routing)
    const dropped = samePairs(final, routing) ? 0 : droppedPairs(routing, final)
    return outcome(id, routing.tokens, pairs, dropped, c, b)
  }

  return {
    step(item, batchId) {
      const id = batchId ?? (isRouting(item) ? nextId : item.id)
      nextId = id + 1
      return absorb(evaluate(item, id))
    },
    evaluate,
    absorb,
    stepLoads(load, tokens, batchId) {
      if (policies.length || baseline.length) {
        throw new MoeError(ErrorCodes.INPUT_INVALID, 'policies need per-token routing; a counts-only record feeds only the load model (remove the policies)', { path: '/policies' })
      }
      const id = batchId ?? nextId
      nextId = id + 1
      const c = evaluateLoads(load, tokens, env)
      return absorb(outcome(id, tokens, c.pairs, 0, c, c))
    },
    result() {
      const wall = (performance.now() - started) / 1000
      const n = Math.max(1, acc.batches)
      const sum = (a: number[]) => a.reduce((s, v) => s + v, 0)
      const summary: SimulationSummary = {
        batches: acc.batches,
        tokens: acc.tokens,
        devices: D,
        experts: model.experts,
        pairs: acc.pairs,
        droppedFraction: acc.pairs === 0 ? 0 : acc.dropped / acc.pairs,
        maxLoad: acc.maxLoad,
        avgMaxLoad: acc.sumMaxLoad / n,
        baselineMaxLoad: acc.bMaxLoad,
        baselineAvgMaxLoad: acc.bSumMaxLoad / n,
        latencyMs: stats(latencies),
        baselineLatencyMs: stats(baseLatencies),
        speedup: sum(latencies) === 0 ? 1 : sum(baseLatencies) / sum(latencies),
        computeMs: acc.compute / n,
        communicationMs: acc.comm / n,
        cT: acc.active === 0 ? 0 : acc.visits / acc.active,
        baselineCT: acc.bActive === 0 ? 0 : acc.bVisits / acc.bActive,
        intraCollaboration: acc.co === 0 ? Number.NaN : acc.intra / acc.co,
        a2aBytes: acc.a2a,
        baselineA2aBytes: acc.bA2a,
        deviceRows: [...deviceRows],
        wallSeconds: wall,
        tokensPerSecond: wall > 0 ? acc.tokens / wall : 0,
      }
      return {
        summary,
        batches,
        setup: {
          placement: placement.strategy,
          policies: policies.map((p) => p.name),
          baseline: baseline.map((p) => p.name),
          cost: cost.name,
          link: link.name,
          dedupe: env.dedupe,
          model: { ...(options.model.name ? { name: options.model.name } : {}), experts: options.model.experts, topK: options.model.topK, hidden: options.model.hidden, intermediate: options.model.intermediate },
        },
      }
    },
  }
}

/** Runs a whole workload (sync or async iterable) through a new simulator. */
export async function simulate(workload: SimulationWorkload, options: SimulatorOptions): Promise<SimulationResult> {
  const sim = createSimulator(options)
  if (Symbol.asyncIterator in workload) for await (const item of workload as AsyncIterable<TokenBatch | Routing>) sim.step(item)
  else for (const item of workload as Iterable<TokenBatch | Routing>) sim.step(item)
  return sim.result()
}

/** {@link simulate} for synchronous iterables. */
export function simulateSync(workload: Iterable<TokenBatch | Routing>, options: SimulatorOptions): SimulationResult {
  const sim = createSimulator(options)
  for (const item of workload) sim.step(item)
  return sim.result()
}

function countPairs(r: Routing): number {
  let n = 0
  for (let i = 0; i < r.expertIds.length; i++) if (r.expertIds[i] >= 0) n++
  return n
}

/** Mean, percentiles (core's `quantileSorted`: linear interpolation) and max; all 0 for no values. */
function stats(values: readonly number[]) {
  if (values.length === 0) return { mean: 0, p50: 0, p95: 0, p99: 0, max: 0 }
  const s = Float64Array.from(values).sort()
  const q = (p: number) => quantileSorted(s, p)
  return { mean: values.reduce((a, b) => a + b, 0) / values.length, p50: q(0.5), p95: q(0.95), p99: q(0.99), max: s[s.length - 1] }
}
