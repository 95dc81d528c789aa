/**
 * DeepSeek EPLB `rebalance_experts` (SPEC F; deepseek-ai/EPLB `eplb.py`, MIT), ported to
 * TypeScript. The hierarchical policy packs expert groups onto nodes, replicates hot
 * experts within each node and packs the replicas onto GPUs; when the groups do not divide
 * by the nodes the global policy runs the same routine with one group and one node.
 * Upstream sorts with an unstable sort; this port breaks ties by lower index, so outputs
 * match upstream exactly only for inputs without ties.
 */
import { ErrorCodes, MoeError, maxOf, pushAll, type PlacementMap } from '@moe-route/core'

/** What {@link rebalanceExperts} returns, shaped like upstream's tensors (as nested arrays). */
export interface EplbResult {
  /** layers × physical slots: the logical expert in each slot. Slot p is on GPU ⌊p / (R/G)⌋. */
  readonly phy2log: number[][]
  /** layers × experts × max replicas: the slots of each expert's replicas, −1 padded. */
  readonly log2phy: number[][][]
  /** layers × experts: replicas per expert (≥ 1; Σ = R per layer). */
  readonly logcnt: number[][]
}

/** Parameters of {@link rebalanceExperts} (upstream's argument names in camelCase). */
export interface EplbParams {
  /** Physical expert slots R (≥ experts, multiple of numGpus). */
  readonly numReplicas: number
  /** Expert groups (contiguous blocks of experts; DeepSeek-V3 uses its routing groups). */
  readonly numGroups: number
  readonly numNodes: number
  readonly numGpus: number
}

/** Result of upstream's `balanced_packing` for one row. */
interface Packing {
  packIndex: number[]
  rankInPack: number[]
}

/** Packs n weighted items into numPacks packs of n/numPacks items, heaviest first onto the lightest pack. */
export function balancedPacking(weight: readonly number[], numPacks: number): Packing {
  const n = weight.length
  if (n % numPacks !== 0) throw new MoeError(ErrorCodes.INPUT_INVALID, `${n} items do not divide into ${numPacks} packs`)
  const per = n / numPacks
  if (per === 1) return { packIndex: weight.map((_, i) => i), rankInPack: weight.map(() => 0) }
  const order = weight.map((_, i) => i).sort((a, b) => weight[b] - weight[a] || a - b)
  const packIndex = new Array<number>(n).fill(-1)
  const rankInPack = new Array<number>(n).fill(-1)
  const packWeights = new Array<number>(numPacks).fill(0)
  const packItems = new Array<number>(numPacks).fill(0)
  for (const item of order) {
    let pack = -1
    for (let p = 0; p < numPacks; p++) {
      if (packItems[p] < per && (pack < 0 || packWeights[p] < packWeights[pack])) pack = p
    }
    packIndex[item] = pack
    rankInPack[item] = packItems[pack]
    packWeights[pack] += weight[item]
    packItems[pack]++
  }
  return { packIndex, rankInPack }
}

/** Upstream's `replicate_experts` for one row: each extra slot goes to argmax(load / count). */
export function replicateExperts(weight: readonly number[], numPhy: number): { phy2log: number[]; rank: number[]; logcnt: number[] } {
  const numLog = weight.length
  if (numPhy < numLog) throw new MoeError(ErrorCodes.INPUT_INVALID, `${numPhy} slots cannot hold ${numLog} experts`)
  const phy2log = Array.from({ length: numPhy }, (_, i) => i)
  const rank = new Array<number>(numPhy).fill(0)
  const logcnt = new Array<number>(numLog).fill(1)
  for (let i = numLog; i < numPhy; i++) {
    let best = 0
    for (let e = 1; e < numLog; e++) if (weight[e] / logcnt[e] > weight[best] / logcnt[best]) best = e
    phy2log[i] = best
    rank[i] = logcnt[best]
    logcnt[best]++
  }
  return { phy2log, rank, logcnt }
}

function inverse(perm: readonly number[]): number[] {
  const inv = new Array<number>(perm.length)
  perm.forEach((v, i) => (inv[v] = i))
  return inv
}

/** One layer of upstream's `rebalance_experts_hierarchical`. */
function hierarchical(weight: readonly number[], numPhysical: number, numGroups: number, numNodes: number, numGpus: number) {
  const E = weight.length
  const groupSize = E / numGroups
  const groupsPerNode = numGroups / numNodes
  const phyPerGpu = numPhysical / numGpus
  // Step 1: groups → nodes.
  const tokensPerGroup = Array.from({ length: numGroups }, (_, g) => {
    let s = 0
    for (let i = 0; i < groupSize; i++) s += weight[g * groupSize + i]
    return s
  })
  const groups = balancedPacking(tokensPerGroup, numNodes)
  const log2mlog = new Array<number>(E)
  for (let g = 0; g < numGroups; g++) {
    for (let i = 0; i < groupSize; i++) log2mlog[g * groupSize + i] = (groups.packIndex[g] * groupsPerNode + groups.rankInPack[g]) * groupSize + i
  }
  const mlog2log = inverse(log2mlog)
  // Step 2: replicas within each node.
  const perNode = E / numNodes
  const phyPerNode = numPhysical / numNodes
  const gpusPerNode = numGpus / numNodes
  const pphy2log: number[] = []
  const pphyrank: number[] = []
  const mlogcnt: number[] = []
  for (let n = 0; n < numNodes; n++) {
    const tokensPerMlog = Array.from({ length: perNode }, (_, m) => weight[mlog2log[n * perNode + m]])
    const rep = replicateExperts(tokensPerMlog, phyPerNode)
    pushAll(mlogcnt, rep.logcnt)
    // Step 3: replicas → GPUs of the node.
    const tokensPerPhy = rep.phy2log.map((m) => tokensPerMlog[m] / rep.logcnt[m])
    const pack = balancedPacking(tokensPerPhy, gpusPerNode)
    const phy2pphy = pack.packIndex.map((p, i) => p * phyPerGpu + pack.rankInPack[i])
    const pphy2phy = inverse(phy2pphy)
    for (let q = 0; q < phyPerNode; q++) {
      const phy = pphy2phy[q]
      pphy2log.push(mlog2log[rep.phy2log[phy] + n * perNode])
      pphyrank.push(rep.rank[phy])
    }
  }
  const logcnt = log2mlog.map((m) => mlogcnt[m])
  return { phy2log: pphy2log, phyrank: pphyrank, logcnt }
}

/**
 * EPLB's `rebalance_experts`: replicas and their GPUs for each layer from its expert loads.
 * @param weight layers × experts load (e.g. tokens per expert over a window)
 * @example
 * const { phy2log, log2phy, logcnt } = rebalanceExperts(loads, { numReplicas: 16, numGroups: 4, numNodes: 2, numGpus: 8 })
 */
export function rebalanceExperts(weight: readonly (readonly number[])[], params: EplbParams): EplbResult {
  const { numReplicas: R, numGroups, numNodes, numGpus } = params
  for (const [k, v] of Object.entries(params)) {
    if (!Number.isInteger(v) || v < 1) throw new MoeError(ErrorCodes.INPUT_INVALID, `${k} must be a positive integer, got ${v}`, { path: `/${k}` })
  }
  if (weight.length === 0) throw new MoeError(ErrorCodes.INPUT_INVALID, 'weight needs at least one layer', { path: '/weight' })
  const E = weight[0].length
  weight.forEach((row, l) => {
    if (row.length !== E) throw new MoeError(ErrorCodes.SHAPE_MISMATCH, `layer ${l} has ${row.length} experts, expected ${E}`, { path: `/weight/${l}` })
    row.forEach((v, e) => {
      if (!Number.isFinite(v) || v < 0) throw new MoeError(ErrorCodes.INPUT_INVALID, `load ${v} of expert ${e} in layer ${l} must be finite and ≥ 0`, { path: `/weight/${l}/${e}` })
    })
  })
  if (R % numGpus !== 0) throw new MoeError(ErrorCodes.INPUT_INVALID, `numReplicas ${R} is not a multiple of numGpus ${numGpus}`, { path: '/numReplicas' })
  if (R < E) throw new MoeError(ErrorCodes.INPUT_INVALID, `numReplicas ${R} is fewer than the ${E} experts`, { path: '/numReplicas' })
  if (numGpus % numNodes !== 0) throw new MoeError(ErrorCodes.INPUT_INVALID, `numGpus ${numGpus} is not a multiple of numNodes ${numNodes}`, { path: '/numGpus' })
  const hier = numGroups % numNodes === 0
  const [groups, nodes] = hier ? [numGroups, numNodes] : [1, 1]
  if (E % groups !== 0) throw new MoeError(ErrorCodes.INPUT_INVALID, `${E} experts do not divide into ${groups} groups`, { path: '/numGroups' })
  if (hier && (R / nodes) % (numGpus / nodes) !== 0) throw new MoeError(ErrorCodes.INPUT_INVALID, 'slots per node do not divide over the GPUs of a node')
  const phy2log: number[][] = []
  const phyrank: number[][] = []
  const logcnt: number[][] = []
  for (const row of weight) {
    const r = hierarchical(row, R, groups, nodes, numGpus)
    phy2log.push(r.phy2log)
    phyrank.push(r.phyrank)
    logcnt.push(r.logcnt)
  }
  const maxcnt = maxOf(logcnt.flat())
  const log2phy = logcnt.map(() => Array.from({ length: E }, () => new Array<number>(maxcnt).fill(-1)))
  phy2log.forEach((row, l) => row.forEach((e, p) => (log2phy[l][e][phyrank[l][p]] = p)))
  return { phy2log, log2phy, logcnt }
}

/**
 * Core's PlacementMap for one layer of a phy2log table: expert e's replicas are the GPUs of
 * its slots, in replica-rank order when `log2phy` is given, else in slot order.
 */
export function placementFromPhy2log(phy2log: readonly number[], gpus: number, experts?: number, strategy = 'eplb'): PlacementMap {
  if (!Number.isInteger(gpus) || gpus < 1 || phy2log.length % gpus !== 0) {
    throw new MoeError(ErrorCodes.INPUT_INVALID, `${phy2log.length} slots do not divide over ${gpus} GPUs`, { path: '/phy2log' })
  }
  const E = experts ?? Math.max(-1, ...phy2log) + 1
  const perGpu = phy2log.length / gpus
  const replicas: number[][] = Array.from({ length: E }, () => [])
  phy2log.forEach((e, p) => {
    if (!Number.isInteger(e) || e < 0 || e >= E) throw new MoeError(ErrorCodes.INPUT_INVALID, `slot ${p} holds expert ${e}, outside 0..${E - 1}`, { path: `/phy2log/${p}` })
    replicas[e].push(Math.floor(p / perGpu))
  })
  replicas.forEach((r, e) => {
    if (r.length === 0) throw new MoeError(ErrorCodes.INPUT_INVALID, `expert ${e} has no slot`, { path: '/phy2log' })
  })
  return { devices: gpus, experts: E, replicas, strategy }
}

/**
 * The phy2log row of a placement: slots GPU-major, each device's experts in ascending id
 * order (one slot per replica). Throws when devices hold different numbers of slots,
 * which the phy2log form cannot express.
 */
export function phy2logFromPlacement(placement: PlacementMap): number[] {
  const perDevice: number[][] = Array.from({ length: placement.devices }, () => [])
  placement.replicas.forEach((reps, e) => reps.forEach((d) => perDevice[d].push(e)))
  const size = perDevice[0].length
  perDevice.forEach((list, d) => {
    if (list.length !== size) {
      throw new MoeError(ErrorCodes.INPUT_INVALID, `device ${d} holds ${list.length} slots but device 0 holds ${size}; phy2log needs equal slots per device`, { device: d })
    }
  })
  return perDevice.flatMap((l) => l.sort((a, b) => a - b))
}
