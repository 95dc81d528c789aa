/**
 * Placements as JSON in the `phy2log` form serving engines consume (EPLB, vLLM, SGLang):
 * per layer, the logical expert held by each physical slot, slots GPU-major.
 */
import { ErrorCodes, MoeError, type PlacementMap } from '@moe-route/core'
import { placementFromPhy2log, phy2logFromPlacement } from './eplb.js'

/** The JSON document written by {@link placementToJSON}. */
export interface PlacementJSON {
  readonly format: 'moe-route.placement/v1'
  readonly numGpus: number
  readonly numExperts: number
  /** layers × slots. */
  readonly phy2log: number[][]
  /** layers × experts × max replicas (slots, −1 padded). */
  readonly log2phy: number[][][]
  /** layers × experts. */
  readonly logcnt: number[][]
  /** Strategy of each layer's placement. */
  readonly strategy?: string[]
}

/**
 * One or more layers' placements as a phy2log document. Every device must hold the same
 * number of slots (throws MOE_ROUTE_ERR_INPUT_INVALID otherwise).
 * @example
 * writeFileSync('placement.json', JSON.stringify(placementToJSON([layer0, layer1])))
 */
export function placementToJSON(layers: PlacementMap | readonly PlacementMap[]): PlacementJSON {
  const list = Array.isArray(layers) ? (layers as readonly PlacementMap[]) : [layers as PlacementMap]
  if (list.length === 0) throw new MoeError(ErrorCodes.INPUT_INVALID, 'no placement to export')
  const { devices, experts } = list[0]
  list.forEach((p, l) => {
    if (p.devices !== devices || p.experts !== experts) {
      throw new MoeError(ErrorCodes.SHAPE_MISMATCH, `layer ${l} has ${p.experts} experts on ${p.devices} devices, layer 0 ${experts} on ${devices}`)
    }
  })
  const phy2log = list.map(phy2logFromPlacement)
  const { log2phy, logcnt } = inverseTables(phy2log, experts)
  return { format: 'moe-route.placement/v1', numGpus: devices, numExperts: experts, phy2log, log2phy, logcnt, strategy: list.map((p) => p.strategy) }
}

/** log2phy and logcnt of phy2log tables (replica rank = slot order). */
export function inverseTables(phy2log: readonly (readonly number[])[], experts: number): { log2phy: number[][][]; logcnt: number[][] } {
  const logcnt = phy2log.map((row) => {
    const c = new Array<number>(experts).fill(0)
    for (const e of row) c[e]++
    return c
  })
  const max = Math.max(1, ...logcnt.flat())
  const log2phy = phy2log.map((row) => {
    const t = Array.from({ length: experts }, () => new Array<number>(max).fill(-1))
    const seen = new Array<number>(experts).fill(0)
    row.forEach((e, p) => (t[e][seen[e]++] = p))
    return t
  })
  return { log2phy, logcnt }
}

/**
 * Reads a placement document: ours, EPLB's `{ phy2log, ... }`, or a bare phy2log array
 * (one layer or many). `numGpus` comes from the document or `options.gpus`.
 * Returns one PlacementMap per layer.
 */
export function placementFromJSON(doc: unknown, options: { gpus?: number; experts?: number } = {}): PlacementMap[] {
  const obj = (Array.isArray(doc) ? { phy2log: doc } : doc) as Partial<PlacementJSON> | null
  if (!obj || typeof obj !== 'object' || !Array.isArray(obj.phy2log)) {
    throw new MoeError(ErrorCodes.INPUT_INVALID, 'placement JSON needs a "phy2log" array', { path: '/phy2log' })
  }
  const rows = (typeof obj.phy2log[0] === 'number' ? [obj.phy2log] : obj.phy2log) as unknown[]
  const gpus = options.gpus ?? obj.numGpus
  if (gpus === undefined) throw new MoeError(ErrorCodes.INPUT_INVALID, 'placement JSON has no "numGpus"; pass the GPU count', { path: '/numGpus' })
  const experts = options.experts ?? obj.numExperts
  return rows.map((row, l) => {
    if (!Array.isArray(row) || row.some((v) => typeof v !== 'number')) {
      throw new MoeError(ErrorCodes.INPUT_INVALID, `phy2log layer ${l} is not an array of expert ids`, { path: `/phy2log/${l}` })
    }
    return placementFromPhy2log(row as number[], gpus, experts, obj.strategy?.[l] ?? 'phy2log')
  })
}
