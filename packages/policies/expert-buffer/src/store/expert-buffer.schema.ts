/** Options of the `expert-buffer` store plugin, their JSON Schema and defaults. */
import type { JsonSchema } from '@moe-route/core'

/** Options of the `expert-buffer` store plugin (what a moe-route config's `store.options` holds). */
export interface ExpertBufferPluginOptions {
  /** Expert slots per device (1 … experts per device). */
  slots: number
  /** Eviction policy: `lifo` (paper), `lifo-lfu`, `lifo-fifo`, `lifo-lru`, `lifo-pure`, `fifo`, `lru`, `lfu`. */
  eviction: 'lifo' | 'lifo-lfu' | 'lifo-fifo' | 'lifo-lru' | 'lifo-pure' | 'fifo' | 'lru' | 'lfu'
  /** A batch needing more experts than slots goes past the cache instead of evicting. */
  bypassLargeBatches: boolean
  /** `history`: after each batch, prefetch the most often active non-resident experts. */
  prefetch: 'none' | 'history'
  /** Experts prefetched per batch with `prefetch: 'history'`. */
  prefetchCount: number
  /** Element type used to count bytes when no weights are given (`3·H·I·sizeof`). */
  dtype: 'f32' | 'f16' | 'bf16'
  /** Read expert weights from safetensors shards (only the tensors needed); null = accounting only. */
  weights: { files: string | string[]; layout: 'mixtral' | 'olmoe'; layer: number } | null
}

/** Defaults: the paper's LIFO, bypass on, no prefetch, f32 accounting, no weights. */
export const defaultOptions: ExpertBufferPluginOptions = {
  slots: 4,
  eviction: 'lifo',
  bypassLargeBatches: true,
  prefetch: 'none',
  prefetchCount: 1,
  dtype: 'f32',
  weights: null,
}

/** JSON Schema (draft-07) of {@link ExpertBufferPluginOptions}. */
export const schema: JsonSchema = {
  type: 'object',
  properties: {
    slots: { type: 'integer', minimum: 1 },
    eviction: { type: 'string', enum: ['lifo', 'lifo-lfu', 'lifo-fifo', 'lifo-lru', 'lifo-pure', 'fifo', 'lru', 'lfu'] },
    bypassLargeBatches: { type: 'boolean' },
    prefetch: { type: 'string', enum: ['none', 'history'] },
    prefetchCount: { type: 'integer', minimum: 1 },
    dtype: { type: 'string', enum: ['f32', 'f16', 'bf16'] },
    weights: {
      anyOf: [
        { type: 'null' },
        {
          type: 'object',
          properties: {
            files: { anyOf: [{ type: 'string', minLength: 1 }, { type: 'array', items: { type: 'string', minLength: 1 }, minItems: 1 }] },
            layout: { type: 'string', enum: ['mixtral', 'olmoe'] },
            layer: { type: 'integer', minimum: 0 },
          },
          required: ['files', 'layout', 'layer'],
          additionalProperties: false,
        },
      ],
    },
  },
  required: ['slots', 'eviction', 'bypassLargeBatches', 'prefetch', 'prefetchCount', 'dtype', 'weights'],
  additionalProperties: false,
}
