/**
 * One way to make a capacity-aware policy: its name, description, options schema and the
 * pure `apply` (plus its WGSL lowering, when it has one) go in; the registry plugin (with
 * meta read from this package's package.json) and the direct factory come out. Every policy
 * folder of this package is written with it, so the plugin meta and the factory exist once.
 */
import {
  definePolicy,
  type JsonSchema,
  type LoweringContext,
  type Plugin,
  type PluginContext,
  type PolicyContext,
  type PolicyOutcome,
  type Routing,
  type RoutingPolicy,
} from '@moe-route/core'
import { CORE_RANGE, PACKAGE_NAME, PACKAGE_VERSION } from './meta.js'

/** A policy instance made by a capacity policy's factory: the policy and its merged options. */
export type CapacityPolicyInstance<O> = RoutingPolicy & { readonly options: Readonly<O> }

/** What a capacity policy is made of (see {@link defineCapacityPolicy}). */
export interface CapacityPolicySpec<O extends object> {
  /** Policy name used in configs, errors and dropped-pair reports (also its README anchor). */
  readonly name: string
  /** One line for `moe-route plugins`. */
  readonly description: string
  /** JSON Schema of the options after defaults are merged. */
  readonly schema: JsonSchema
  readonly defaultOptions: O
  /** The policy on one routing (pure: the same input and `random` draws give the same outcome). */
  apply(routing: Routing, options: O, ctx: PolicyContext): PolicyOutcome
  /** The WGSL stage making exactly `apply`'s decisions for these options (absent: host only). */
  lower?(options: O, ctx: LoweringContext): ReturnType<NonNullable<RoutingPolicy['lower']>>
  /** Checks made when the registry creates the policy (the placement in force, say); throws to refuse. */
  check?(options: O, context: PluginContext): void
}

/** The registry plugin and the direct factory of one capacity policy. */
export interface CapacityPolicy<O extends object> {
  /** The plugin to register (`registry.register(plugin)`), selected in configs by its name. */
  readonly plugin: Plugin<'policy', O>
  /** Creates the policy without a registry; `options` are merged over the defaults (not validated). */
  readonly create: (options?: Partial<O>) => CapacityPolicyInstance<O>
}

/**
 * Makes the plugin and the factory of a capacity policy.
 * @example
 * const family = defineCapacityPolicy<MyOptions>({ name: 'my-drop', description: '…', schema, defaultOptions, apply: (r, o) => myDrop(r, o) })
 * registry.register(family.plugin)
 * const policy = family.create({ capacityFactor: 1.25 })
 */
export function defineCapacityPolicy<O extends object>(spec: CapacityPolicySpec<O>): CapacityPolicy<O> {
  const { lower } = spec
  const instance = (o: O): CapacityPolicyInstance<O> => ({
    name: spec.name,
    options: o,
    apply: (routing: Routing, ctx: PolicyContext) => spec.apply(routing, o, ctx),
    ...(lower ? { lower: (ctx: LoweringContext) => lower(o, ctx) } : {}),
  })
  const plugin = definePolicy<O>({
    meta: {
      name: spec.name,
      package: PACKAGE_NAME,
      version: PACKAGE_VERSION,
      core: CORE_RANGE,
      description: spec.description,
      schema: spec.schema,
      defaultOptions: spec.defaultOptions,
      ...(lower ? { device: ['wgsl'] as const } : {}),
      docs: { url: `https://github.com/moe-route/moe-route/tree/main/packages/policies/capacity#${spec.name}` },
    },
    create(options: O, context: PluginContext) {
      spec.check?.(options, context)
      return instance(options)
    },
  })
  return { plugin, create: (options = {}) => instance({ ...spec.defaultOptions, ...options }) }
}
