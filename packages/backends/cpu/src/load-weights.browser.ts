/** Host weights in the browser build: seeded or given weights; no files to read (no `node:fs`). */
import { ErrorCodes, MoeError, seededLayerWeights } from '@moe-route/core'
import type * as NodeTwin from './load-weights.js'

/** Seeded or host weights; a safetensors file is MOE_ROUTE_ERR_BACKEND_UNAVAILABLE (files need Node). */
export const loadCpuWeights: typeof NodeTwin.loadCpuWeights = async (source, shape) => {
  if (source.kind === 'host') return source.weights
  if (source.kind === 'seeded') return seededLayerWeights(shape, source.seed, source.std, source.routerStd ?? source.std)
  throw new MoeError(ErrorCodes.BACKEND_UNAVAILABLE, `the cpu backend reads safetensors files (${source.file}) in Node only; pass the weights instead`, { path: '/weights/file' })
}
