/** The `cpu` backend: the reference kernels behind the core Backend interface. */
import { defineBackend, seededHidden, type Backend } from '@moe-route/core'
import { hostCpu } from './host-cpu.js'
import { expertsForward, gateMatmul } from './kernels.js'
import { loadCpuWeights } from './load-weights.js'
import { CORE_RANGE, PACKAGE_NAME, PACKAGE_VERSION } from './meta.js'

/** Creates a CPU backend instance. */
export function createCpuBackend(): Backend {
  return {
    name: 'cpu',
    info: () => {
      const { model, cores } = hostCpu()
      return { name: 'cpu', adapter: `${model} (${cores} cores, single-threaded reference)` }
    },
    async gate(x, tokens, weights) {
      const { hidden, experts } = weights.shape
      return gateMatmul(x, weights.router, tokens, hidden, experts)
    },
    async experts(x, plan, weights) {
      return { output: expertsForward(x, plan, weights) }
    },
    loadWeights: loadCpuWeights,
    // core's host values of the stream (a GPU backend makes the same on its device)
    async syntheticHidden(tokens, hidden, seed) {
      return seededHidden(tokens, hidden, seed)
    },
  }
}

/** The `cpu` backend plugin (the default backend). */
export const cpuBackend = defineBackend<Record<string, never>>({
  meta: {
    name: 'cpu',
    package: PACKAGE_NAME,
    version: PACKAGE_VERSION,
    core: CORE_RANGE,
    description: 'Reference MoE layer over Float32Array (single-threaded)',
    schema: { type: 'object', properties: {}, additionalProperties: false },
    defaultOptions: {},
  },
  create: () => createCpuBackend(),
})

export default cpuBackend
