/**
 * Host copies of seeded layer weights: the values a GPU backend generates on the device for
 * the same {@link WeightSource} (`seeded`), for host backends and parity checks.
 */
import { ErrorCodes, MoeError } from '../errors.js'
import type { ExpertWeights, LayerWeights, ModelShape } from '../types.js'
import { seededNormals, seededWeightStreams } from '../util/rng.js'

/**
 * Every weight of a layer from normal(0, std) by the counter-based generator (router E×H from
 * stream `4·seed`; gate, up and down of all experts as one stream each, expert e taking
 * elements e·I·H .. (e+1)·I·H), so one expert can be made without the others.
 * @example
 * const w = seededLayerWeights({ experts: 8, topK: 2, hidden: 64, intermediate: 224, normalizeTopK: true }, 1, 0.02)
 */
export function seededLayerWeights(shape: ModelShape, seed: number, std: number, routerStd = std, only?: readonly number[]): LayerWeights {
  const { experts: E, hidden: H, intermediate: I } = shape
  for (const [k, v] of Object.entries({ experts: E, hidden: H, intermediate: I })) {
    if (!Number.isInteger(v) || v < 1) throw new MoeError(ErrorCodes.INPUT_INVALID, `model.${k} must be a positive integer, got ${v}`, { path: `/model/${k}` })
  }
  if ((H * I) % 2 !== 0 || (E * H) % 2 !== 0) throw new MoeError(ErrorCodes.INPUT_INVALID, `seeded weights need even matrix sizes (H·I ${H * I}, E·H ${E * H})`, { path: '/model' })
  const s = seededWeightStreams(seed)
  const router = seededNormals(new Float32Array(E * H), s.router, routerStd)
  const experts: ExpertWeights[] = []
  const n = I * H
  for (let e = 0; e < E; e++) {
    if (only && !only.includes(e)) {
      experts.push({ gate: new Float32Array(0), up: new Float32Array(0), down: new Float32Array(0) })
      continue
    }
    experts.push({
      gate: seededNormals(new Float32Array(n), s.gate, std, e * n),
      up: seededNormals(new Float32Array(n), s.up, std, e * n),
      down: seededNormals(new Float32Array(n), s.down, std, e * n),
    })
  }
  return { shape, router, experts }
}
