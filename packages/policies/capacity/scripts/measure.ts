/**
 * Shared measuring code for the capacity-aware policies on realistic workloads: batches from
 * @moe-route/workloads, the layer output from @moe-route/backend-cpu's reference forward with
 * seeded random weights, and one table row per (workload, policy, γ). Not shipped.
 */
import { relativeL2, expertsForward } from '@moe-route/backend-cpu'
import { randomHidden, randomLayerWeights } from '@moe-route/workloads'
import { contiguousPlacement, exactSizeDispatch, maxOverMean, mixSeed, mulberry32, softmaxTopK, type LayerWeights, type PlacementMap, type RoutingPolicy, type Routing } from '@moe-route/core'
import { workloadFromSpec } from '@moe-route/workloads'
import { summarize } from '../src/index.js'

/** A realistic workload as measured: prepared batches, their layer output without any policy. */
export interface PreparedWorkload {
  readonly label: string
  readonly spec: string
  readonly devices: number
  readonly placement: PlacementMap
  readonly weights: LayerWeights
  readonly batches: readonly { routing: Routing; hidden: Float32Array; reference: Float32Array }[]
}

/** Reduced layer dimensions for the CPU forward (the error is relative, so only the ratio matters). */
export const HIDDEN = 64
export const INTERMEDIATE = 128

/**
 * Draws `batches` batches of `tokensPerBatch` tokens from a workload spec, routes them with
 * softmax-top-k over the synthesized gate scores (the model's own top-k convention), assigns
 * tokens to `devices` source devices in contiguous blocks (data parallel shards), and runs
 * the reference layer once without any policy.
 */
export function prepare(label: string, spec: string, devices: number, tokensPerBatch: number, batches: number, seed = 1): PreparedWorkload {
  const w = workloadFromSpec(spec)
  const shape = { experts: w.experts, topK: w.topK, hidden: HIDDEN, intermediate: INTERMEDIATE, normalizeTopK: w.normalizeTopK }
  const weights = randomLayerWeights(shape, { seed })
  const placement = contiguousPlacement(w.experts, devices)
  const out: PreparedWorkload['batches'][number][] = []
  for (const b of w.batchesSync({ tokensPerBatch, batches, seed })) {
    const sourceDevice = Int32Array.from({ length: b.tokens }, (_, t) => Math.floor((t * devices) / b.tokens))
    const routing = softmaxTopK({ tokens: b.tokens, experts: w.experts, scores: b.scores!, sourceDevice }, w.topK, w.normalizeTopK)
    const hidden = randomHidden(b.tokens, HIDDEN, mixSeed(seed, b.id))
    out.push({ routing, hidden, reference: forward(routing, hidden, weights, placement) })
  }
  return { label, spec, devices, placement, weights, batches: out }
}

/** The reference layer output of a routing (exact-size groups, weighted combine). */
export function forward(routing: Routing, hidden: Float32Array, weights: LayerWeights, placement: PlacementMap): Float32Array {
  return expertsForward(hidden, exactSizeDispatch(routing, { placement, bytesPerToken: HIDDEN * 2 }), weights)
}

/** One measured row: means over the batches of a workload. */
export interface Row {
  readonly workload: string
  readonly policy: string
  readonly gamma: number
  readonly capacity: number
  readonly droppedFraction: number
  readonly displacedFraction: number
  readonly gateMassKept: number
  readonly gateMassAfter: number
  readonly maxMeanBefore: number
  readonly maxMeanAfter: number
  /** max/mean of per-device load (primary replica), before and after. */
  readonly deviceMaxMeanBefore: number
  readonly deviceMaxMeanAfter: number
  readonly tokensFullyDropped: number
  readonly relL2: number
  readonly ms: number
}

/** Applies a policy to every batch of a prepared workload and averages the summaries. */
export function measure(w: PreparedWorkload, policyLabel: string, gamma: number, policy: RoutingPolicy): Row {
  const acc = { capacity: 0, dropped: 0, displaced: 0, kept: 0, after: 0, mmB: 0, mmA: 0, dB: 0, dA: 0, full: 0, l2: 0, ms: 0 }
  const perDevice = (load: readonly number[]) => {
    const d = new Array<number>(w.placement.devices).fill(0)
    load.forEach((l, e) => (d[w.placement.replicas[e][0]] += l))
    return maxOverMean(d)
  }
  w.batches.forEach((b, i) => {
    const t0 = performance.now()
    const outcome = policy.apply(b.routing, { placement: w.placement, batchId: i, random: mulberry32(mixSeed(7, i)) })
    acc.ms += performance.now() - t0
    const s = summarize(b.routing, outcome)
    acc.capacity = Math.max(acc.capacity, outcome.capacity ?? 0)
    acc.dropped += s.droppedFraction
    acc.displaced += s.displacedFraction
    acc.kept += s.gateMassKept
    acc.after += s.gateMassAfter
    acc.mmB += s.maxMeanBefore
    acc.mmA += s.maxMeanAfter
    acc.dB += perDevice(s.loadBefore)
    acc.dA += perDevice(s.loadAfter)
    acc.full += s.tokensFullyDropped / b.routing.tokens
    acc.l2 += relativeL2(forward(outcome.routing, b.hidden, w.weights, w.placement), b.reference)
  })
  const n = w.batches.length
  return {
    workload: w.label,
    policy: policyLabel,
    gamma,
    capacity: acc.capacity,
    droppedFraction: acc.dropped / n,
    displacedFraction: acc.displaced / n,
    gateMassKept: acc.kept / n,
    gateMassAfter: acc.after / n,
    maxMeanBefore: acc.mmB / n,
    maxMeanAfter: acc.mmA / n,
    deviceMaxMeanBefore: acc.dB / n,
    deviceMaxMeanAfter: acc.dA / n,
    tokensFullyDropped: acc.full / n,
    relL2: acc.l2 / n,
    ms: acc.ms / n,
  }
}

const pct = (x: number) => `${(100 * x).toFixed(1)}%`

/** Markdown table of rows (columns chosen for the capacity READMEs). */
export function table(rows: readonly Row[], opts: { moved?: boolean; device?: boolean } = {}): string {
  const head = [
    'workload',
    'policy',
    'γ',
    'C',
    'dropped',
    ...(opts.moved ? ['moved away'] : []),
    'gate mass kept',
    ...(opts.moved ? ['gate mass after'] : []),
    'max/mean before → after',
    ...(opts.device ? ['device max/mean before → after'] : []),
    'tokens fully dropped',
    'rel. L2 error',
    'ms/batch',
  ]
  const lines = [`| ${head.join(' | ')} |`, `|${head.map(() => '---').join('|')}|`]
  for (const r of rows) {
    lines.push(
      `| ${[
        r.workload,
        r.policy,
        r.gamma.toFixed(1),
        r.capacity,
        pct(r.droppedFraction),
        ...(opts.moved ? [pct(r.displacedFraction)] : []),
        pct(r.gateMassKept),
        ...(opts.moved ? [pct(r.gateMassAfter)] : []),
        `${r.maxMeanBefore.toFixed(2)} → ${r.maxMeanAfter.toFixed(2)}`,
        ...(opts.device ? [`${r.deviceMaxMeanBefore.toFixed(2)} → ${r.deviceMaxMeanAfter.toFixed(2)}`] : []),
        pct(r.tokensFullyDropped),
        r.relL2.toFixed(4),
        r.ms.toFixed(1),
      ].join(' | ')} |`,
    )
  }
  return lines.join('\n')
}

/** The two workloads of the READMEs: OLMoE-like (64 experts, top-8) and Mixtral-like (8, top-2), 8 devices each. */
export const WORKLOADS = [
  { label: 'OLMoE c4 L7', spec: 'olmoe:c4:layer7', devices: 8 },
  { label: 'OLMoE arxiv L0', spec: 'olmoe:arxiv:layer0', devices: 8 },
  { label: 'Mixtral c4 L7', spec: 'mixtral:c4:layer7', devices: 8 },
  { label: 'Mixtral github L15', spec: 'mixtral:github:layer15', devices: 8 },
] as const

/** Tokens per batch and batches per workload used by the scripts. */
export const TOKENS_PER_BATCH = 2048
export const BATCHES = 4
