/**
 * The JSON Schema of a moe-route config file. Published as
 * `@moe-route/core/config.schema.json` so editors can validate configs:
 * `{ "$schema": "./node_modules/@moe-route/core/schema/config.schema.json", ... }`.
 */
const pluginRef = (description: string) => ({
  type: 'object',
  description,
  properties: {
    use: { type: 'string', minLength: 1, description: 'Plugin name (e.g. "capacity-drop") or npm package' },
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
        experts: { type: 'integer', minimum: 1, maximum: 65536, description: 'Routed experts E' },
        topK: { type: 'integer', minimum: 1, maximum: 256, description: 'Experts per token k (≤ experts)' },
        hidden: { type: 'integer', minimum: 1, description: 'Hidden size H' },
        intermediate: { type: 'integer', minimum: 1, description: 'Expert intermediate size I' },
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
    devices: { type: 'integer', minimum: 1, maximum: 65536, description: 'Devices under expert parallelism' },
    plugins: { type: 'array', items: { type: 'string', minLength: 1 }, description: 'npm packages to load plugins from' },
    workload: {
      type: 'object',
      description: 'Where batches come from for `moe-route run`/`simulate`',
      properties: {
        source: { type: 'string', minLength: 1, description: 'Workload spec (e.g. mixtral:c4:layer7) or trace file path' },
        tokensPerBatch: { type: 'integer', minimum: 1 },
        batches: { type: 'integer', minimum: 1 },
        seed: { type: 'integer' },
        layer: { type: 'integer', minimum: 0, description: 'Layer to read from a multi-layer trace' },
      },
      required: ['source'],
      additionalProperties: false,
    },
    weights: {
      type: 'object',
      description: 'Layer weights: seeded random (default) or a safetensors file',
      properties: {
        seed: { type: 'integer' },
        std: { type: 'number', exclusiveMinimum: 0 },
        file: { type: 'string' },
        layer: { type: 'integer', minimum: 0 },
        layout: { type: 'string', enum: ['mixtral', 'olmoe'] },
      },
      additionalProperties: false,
    },
    stream: {
      type: 'object',
      properties: {
        maxInFlight: { type: 'integer', minimum: 1, maximum: 1024 },
        capacity: { type: 'integer', minimum: 1 },
      },
      additionalProperties: false,
    },
    activationBytes: { type: 'integer', enum: [1, 2, 4], description: 'Bytes per activation element on the wire (default 2, bf16)' },
    seed: { type: 'integer', description: 'Base seed (policies, weights, workloads)' },
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
}
