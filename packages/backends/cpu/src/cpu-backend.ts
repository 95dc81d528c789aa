/** The `cpu` backend: the reference kernels behind the core Backend interface. */
import { defineBackend, seededLayerWeights, type Backend, type LayerWeights, type ModelShape, type WeightSource } from '@moe-route/core'
import { cpus } from 'node:os'
import { expertsForward, gateMatmul } from './kernels.js'

/**
 * Host f32 weights from a {@link WeightSource}: a safetensors file (or sharded index) read
 * through @moe-route/workloads' reader (loaded on first use), seeded weights made on the host,
 * or the host weights given.
 */
export async function loadCpuWeights(source: WeightSource, shape: ModelShape): Promise<LayerWeights> {
  if (source.kind === 'host') return source.weights
  if (source.kind === 'seeded') return seededLayerWeights(shape, source.seed, source.std, source.routerStd ?? source.std)
  const { readSafetensorsLayer } = await import('@moe-route/workloads')
  return readSafetensorsLayer(source, shape)
}

/** Creates a CPU backend instance. */
export function createCpuBackend(): Backend {
  return {
    name: 'cpu',
    info: () => ({ name: 'cpu', adapter: `${cpus()[0]?.model?.trim() ?? 'cpu'} (${cpus().length} cores, single-threaded reference)` }),
    async gate(x, tokens, weights) {
      const { hidden, experts } = weights.shape
      return gateMatmul(x, weights.router, tokens, hidden, experts)
    },
    async experts(x, plan, weights) {
      return { output: expertsForward(x, plan, weights) }
    },
    loadWeights: loadCpuWeights,
  }
}

/** The `cpu` backend plugin (the default backend). */
export const cpuBackend = defineBackend<Record<string, never>>({
  meta: {
    name: 'cpu',
    package: '@moe-route/backend-cpu',
    version: '0.1.0',
    core: '^0.1.0',
    description: 'Reference MoE layer over Float32Array (single-threaded)',
    schema: { type: 'object', properties: {}, additionalProperties: false },
    defaultOptions: {},
  },
  create: () => createCpuBackend(),
})

export default cpuBackend
