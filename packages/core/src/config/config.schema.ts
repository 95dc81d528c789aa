/**
 * The JSON Schema of a moe-route config file. Published as
 * `@moe-route/core/config.schema.json` so editors can validate configs:
 * `{ "$schema": "./node_modules/@moe-route/core/schema/config.schema.json", ... }`.
 */
import { MAX_BATCHES, MAX_DEVICES, MAX_EXPERTS, MAX_HIDDEN, MAX_IN_FLIGHT, MAX_INTERMEDIATE, MAX_LAYER, MAX_PLUGIN_TIMEOUT_MS, MAX_STREAM_CAPACITY, MAX_TOKENS_PER_BATCH, MAX_TOP_K } from '../limits.js'

/** Seeds are integers a double holds exactly. */
const seed = (description?: string) => ({ type: 'integer', minimum: -Number.MAX_SAFE_INTEGER, maximum: Number.MAX_SAFE_INTEGER, ...(description ? { description } : {}) })

const pluginRef = (description: string) => ({
  type: 'object',
  description,
  properties: {
    use: { type: 'string', minLength: 1, maxLength: 1024, description: 'Plugin name (e.g. "capacity-drop") or npm package' },
    options: { type: 'object', description: "Options, validated against the plugin's own schema" },
  },
  required: ['use'],
  additionalProperties: false,
})

const policyRef = {
  ...pluginRef('Routing policy, applied in order'),
  properties: {
    ...pluginRef('').properties,
    fallback: pluginRef('Policy run on a batch instead when this one throws (telemetry records it)'),
  },
}

/** JSON Schema (draft-07) of {@link MoeConfig}. */
export const configSchema = {
  $schema: 'http://json-schema.org/draft-07/schema#',
  $id: 'https://moe-route.dev/schema/config.schema.json',
  title: 'moe-route configuration',
  type: 'object',
  properties: {
    $schema: { type: 'string' },
    model: {
      type: 'object',
      description: 'Shape of the MoE layer. Required by the library (createMoe); the CLI fills an absent section from its embedded default, and `moe-route route` takes the shape from its input',
      properties: {
        name: { type: 'string' },
        experts: { type: 'integer', minimum: 1, maximum: MAX_EXPERTS, description: 'Routed experts E' },
        topK: { type: 'integer', minimum: 1, maximum: MAX_TOP_K, description: 'Experts per token k (≤ experts)' },
        hidden: { type: 'integer', minimum: 1, maximum: MAX_HIDDEN, description: 'Hidden size H' },
        intermediate: { type: 'integer', minimum: 1, maximum: MAX_INTERMEDIATE, description: 'Expert intermediate size I' },
        normalizeTopK: { type: 'boolean', description: 'Renormalise top-k weights (Mixtral true, OLMoE false)' },
      },
      required: ['experts', 'topK', 'hidden', 'intermediate'],
      additionalProperties: false,
    },
    router: pluginRef('Router plugin (default softmax-top-k)'),
    policies: { type: 'array', items: policyRef, description: 'Policy stack' },
    dispatcher: pluginRef('Dispatcher plugin (default exact-size)'),
    placement: pluginRef('Placement plugin (default contiguous)'),
    store: pluginRef('Expert store plugin (default none: every expert resident)'),
    backend: pluginRef('Backend plugin (default cpu)'),
    devices: { type: 'integer', minimum: 1, maximum: MAX_DEVICES, description: 'Devices under expert parallelism' },
    plugins: { type: 'array', maxItems: 256, items: { type: 'string', minLength: 1, maxLength: 214 }, description: 'npm packages to load plugins from (their package.json `moe-route` field declares them)' },
    workload: {
      type: 'object',
      description: 'Where batches come from for `moe-route run`/`simulate`',
      properties: {
        source: { type: 'string', minLength: 1, description: 'Workload spec (e.g. mixtral:c4:layer7) or trace file path' },
        tokensPerBatch: { type: 'integer', minimum: 1, maximum: MAX_TOKENS_PER_BATCH },
        batches: { type: 'integer', minimum: 1, maximum: MAX_BATCHES },
        seed: seed(),
        layer: { type: 'integer', minimum: 0, maximum: MAX_LAYER, description: 'Layer to read from a multi-layer trace' },
      },
      required: ['source'],
      additionalProperties: false,
    },
    weights: {
      type: 'object',
      description: 'Layer weights: seeded random (default) or a safetensors file',
      properties: {
        seed: seed(),
        std: { type: 'number', exclusiveMinimum: 0, maximum: 1e6 },
        file: { type: 'string', minLength: 1, description: 'safetensors file (or *.safetensors.index.json) with the layer, relative to the config' },
        layer: { type: 'integer', minimum: 0, maximum: MAX_LAYER },
        layout: { type: 'string', enum: ['mixtral', 'olmoe'] },
      },
      additionalProperties: false,
    },
    stream: {
      type: 'object',
      properties: {
        maxInFlight: { type: 'integer', minimum: 1, maximum: MAX_IN_FLIGHT, description: 'Batches in flight (≤ capacity)' },
        capacity: { type: 'integer', minimum: 1, maximum: MAX_STREAM_CAPACITY, description: 'Bounded queue of the stream (≥ maxInFlight)' },
      },
      additionalProperties: false,
    },
    activationBytes: { type: 'integer', enum: [1, 2, 4], description: 'Bytes per activation element on the wire (default 2, bf16)' },
    seed: seed('Base seed (policies, weights, workloads)'),
    security: {
      type: 'object',
      description: 'How plugins loaded from packages run (isolation can be switched on here, never off: the --isolate-plugins flag wins)',
      properties: {
        isolatePlugins: { type: 'boolean', description: 'Run package plugins in a worker thread (their own globals; a hung call is terminated)' },
        pluginTimeoutMs: { type: 'integer', minimum: 1, maximum: MAX_PLUGIN_TIMEOUT_MS, description: "Time limit of a package plugin's import and of each of its calls" },
      },
      additionalProperties: false,
    },
  },
  additionalProperties: false,
} as const

/** A plugin reference in a config. */
export interface PluginRef {
  readonly use: string
  readonly options?: Record<string, unknown>
}

/** A policy entry: a plugin reference with an optional fallback. */
export interface PolicyRef extends PluginRef {
  /** Runs on a batch instead when this policy throws. */
  readonly fallback?: PluginRef
}

/** A moe-route config file. */
export interface MoeConfig {
  readonly $schema?: string
  readonly model: {
    readonly name?: string
    readonly experts: number
    readonly topK: number
    readonly hidden: number
    readonly intermediate: number
    readonly normalizeTopK?: boolean
  }
  readonly router?: PluginRef
  readonly policies?: readonly PolicyRef[]
  readonly dispatcher?: PluginRef
  readonly placement?: PluginRef
  readonly store?: PluginRef
  readonly backend?: PluginRef
  readonly devices?: number
  readonly plugins?: readonly string[]
  readonly workload?: {
    readonly source: string
    readonly tokensPerBatch?: number
    readonly batches?: number
    readonly seed?: number
    readonly layer?: number
  }
  readonly weights?: { readonly seed?: number; readonly std?: number; readonly file?: string; readonly layer?: number; readonly layout?: 'mixtral' | 'olmoe' }
  readonly stream?: { readonly maxInFlight?: number; readonly capacity?: number }
  readonly activationBytes?: 1 | 2 | 4
  readonly seed?: number
  /** How plugins loaded from packages run. */
  readonly security?: { readonly isolatePlugins?: boolean; readonly pluginTimeoutMs?: number }
}
