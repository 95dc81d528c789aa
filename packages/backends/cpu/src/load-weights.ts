/** Host weights from a WeightSource (Node: safetensors files through @moe-route/workloads; see load-weights.browser.ts). */
import { seededLayerWeights, type LayerWeights, type ModelShape, type WeightSource } from '@moe-route/core'

/**
 * Host f32 weights from a `WeightSource`: a safetensors file (or sharded index) read
 * through @moe-route/workloads' reader (loaded on first use), seeded weights made on the host,
 * or the host weights given.
 */
export async function loadCpuWeights(source: WeightSource, shape: ModelShape): Promise<LayerWeights> {
  if (source.kind === 'host') return source.weights
  if (source.kind === 'seeded') return seededLayerWeights(shape, source.seed, source.std, source.routerStd ?? source.std)
  const { readSafetensorsLayer } = await import('@moe-route/workloads')
  return readSafetensorsLayer(source, shape)
}
