/**
 * The `expert-buffer` store plugin: what `moe-route run` creates when a config names
 * `{ "store": { "name": "expert-buffer", "options": { "slots": 4 } } }`. It builds an
 * {@link ExpertBufferStore} with the host target (the CPU backend reads host weights); a
 * WebGPU backend that wants real GPU slots creates the store itself with `webgpuTarget`.
 */
import { defineStore } from '@moe-route/core'
import { EXPERT_DTYPE_BYTES } from '../weights/weight-source.js'
import { openSafetensorsWeights } from '../weights/safetensors-source.js'
import { defaultOptions, schema, type ExpertBufferPluginOptions } from './expert-buffer.schema.js'
import { ExpertBufferStore, historyPredictor } from './expert-buffer-store.js'
import { CORE_RANGE, PACKAGE_NAME, PACKAGE_VERSION } from '../meta.js'

export { PACKAGE_NAME, PACKAGE_VERSION }

/**
 * The store plugin.
 * @example
 * import expertBuffer from '@moe-route/policy-expert-buffer'
 * registry.register(expertBuffer) // then config: { store: { name: 'expert-buffer', options: { slots: 4, eviction: 'lifo' } } }
 */
export const expertBufferStore = defineStore<ExpertBufferPluginOptions>({
  meta: {
    name: 'expert-buffer',
    package: PACKAGE_NAME,
    version: PACKAGE_VERSION,
    core: CORE_RANGE,
    schema,
    defaultOptions,
    description: 'Expert Buffering: per-device expert slots backed by host memory, LIFO eviction of inactive experts first',
  },
  create(options, context) {
    const { model, devices, placement } = context
    const w = options.weights
    return new ExpertBufferStore({
      experts: model.experts,
      slots: options.slots,
      devices,
      ...(placement ? { placement: placement.replicas.map((r) => r[0] ?? 0) } : {}),
      eviction: options.eviction,
      bypassLargeBatches: options.bypassLargeBatches,
      expertBytes: 3 * model.hidden * model.intermediate * EXPERT_DTYPE_BYTES[options.dtype],
      ...(w ? { weights: () => openSafetensorsWeights({ files: w.files, layout: w.layout, layer: w.layer, experts: model.experts }) } : {}),
      ...(options.prefetch === 'history' ? { prefetch: historyPredictor(options.prefetchCount) } : {}),
    })
  },
})
