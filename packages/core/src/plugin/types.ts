import type { Backend } from '../backend/backend.js'
import type { Dispatcher } from '../dispatcher/dispatcher.js'
import type { Placement, PlacementMap } from '../placement/placement.js'
import type { RoutingPolicy } from '../policy/policy.js'
import type { Router } from '../router/router.js'
import type { ExpertStore } from '../store/expert-store.js'
import type { ModelShape } from '../types.js'

/** The extension points. */
export type PluginKind = 'router' | 'policy' | 'dispatcher' | 'store' | 'placement' | 'backend'

/** What each kind of plugin creates. */
export interface PluginInstances {
  router: Router
  policy: RoutingPolicy
  dispatcher: Dispatcher
  store: ExpertStore
  placement: Placement
  backend: Backend
}

/** A JSON Schema (draft-07, as ajv reads it) for a plugin's options. */
export type JsonSchema = Record<string, unknown>

/** ESLint-rule-style metadata every plugin carries. */
export interface PluginMeta<O = Record<string, unknown>> {
  /** Short id used in configs, errors and traces, e.g. `capacity-drop`. */
  readonly name: string
  /** npm package name (equals the package.json name). */
  readonly package: string
  /** Plugin version (the package version). */
  readonly version: string
  /** semver range of @moe-route/core this plugin works with, checked at registration. */
  readonly core: string
  /** JSON Schema of the options (after defaults are merged). */
  readonly schema: JsonSchema
  /** Defaults merged under the user's options (shallow). */
  readonly defaultOptions: O
  /** One line for `moe-route plugins`. */
  readonly description?: string
  readonly docs?: { readonly url?: string }
  /**
   * Which device implementations the plugin's instances carry next to their host code
   * (`wgsl`: routers and policies lowered to WGSL; `grouping`: dispatchers lowered to the
   * backend's grouping kernels). Declared so tools can tell without running the plugin;
   * whether a given configuration lowers is up to the instance's `lower()`.
   */
  readonly device?: readonly ('wgsl' | 'grouping')[]
}

/** What `create` receives besides the options. */
export interface PluginContext {
  readonly model: ModelShape
  readonly devices: number
  /** The placement in force (absent while the placement itself is being created). */
  readonly placement?: PlacementMap
  /** Base seed of the run. */
  readonly seed: number
}

/** A moe-route plugin: a plain object with `meta` and a factory. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- the default must accept a plugin of any options type (a registry holds many)
export interface Plugin<K extends PluginKind = PluginKind, O = any> {
  readonly kind: K
  readonly meta: PluginMeta<O>
  create(options: O, context: PluginContext): PluginInstances[K]
}

/** Plugin definitions as authors write them (kind and brand are added by the define helpers). */
export type PluginDefinition<K extends PluginKind, O> = Omit<Plugin<K, O>, 'kind'>
