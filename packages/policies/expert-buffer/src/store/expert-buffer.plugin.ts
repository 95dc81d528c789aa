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

/** npm name of this package (equals package.json `name`). */
export const PACKAGE_NAME = '@moe-route/policy-expert-buffer'
/** Version of this package (equals package.json `version`). */
export const PACKAGE_VERSION = '0.1.0'

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
    core: '^0.1.0',
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
