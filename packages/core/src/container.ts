/**
 * DI wiring. One container per embedding (a child of tsyringe's root: nothing is ever
 * registered on the global container), one child scope per session.
 */
import './polyfill.js' // must run before tsyringe's index checks Reflect.getMetadata
import { container as globalContainer, instanceCachingFactory, type DependencyContainer } from 'tsyringe'
import { Backend, LayerWeightSource, type WeightSource } from './backend/backend.js'
import { isResolvedFor } from './config/trust.js'
import { resolveConfig, ResolvedConfig } from './config/validate.js'
import { Dispatcher } from './dispatcher/dispatcher.js'
import { exactSizeDispatcher } from './builtins/exact-size.js'
import { MoeEngine } from './engine/moe-engine.js'
import { ErrorCodes, MoeError } from './errors.js'
import { contiguousPlacementPlugin } from './builtins/contiguous.js'
import { Placement, PlacementMap } from './placement/placement.js'
import { PluginRegistry, pluginError, type RegistryOptions } from './plugin/registry.js'
import type { Plugin, PluginContext } from './plugin/types.js'
import { RoutingPolicy, withFallback } from './policy/policy.js'
import { Router } from './router/router.js'
import { softmaxTopKRouter } from './builtins/softmax-top-k.js'
import { ExpertStore } from './store/expert-store.js'
import { defineToken } from './tokens.js'
import { LayerWeights, type LayerWeights as LayerWeightsType } from './types.js'

/** The plugin registry of a container. */
export const PluginRegistryToken = defineToken<PluginRegistry>('PluginRegistry')

/** Core's own built-in plugins (router, placement, dispatcher). */
export const corePlugins: readonly Plugin[] = [softmaxTopKRouter, contiguousPlacementPlugin, exactSizeDispatcher]

/** Registries made by {@link createRegistry}: they hold core's plugins already. */
const withCorePlugins = new WeakSet<PluginRegistry>()

/** A registry with core's built-ins and the given plugins registered. */
export function createRegistry(plugins: readonly Plugin[] = [], options: RegistryOptions = {}): PluginRegistry {
  const registry = new PluginRegistry(options)
  for (const p of corePlugins) registry.register(p)
  withCorePlugins.add(registry)
  for (const p of plugins) registry.register(p)
  return registry
}

/** Options of {@link createMoeContainer}. */
export interface MoeContainerOptions {
  /**
   * A config object (validated here), or a config `resolveConfig` (or core/node's `loadConfig`)
   * returned for `registry`, which is taken as it is.
   */
  readonly config: unknown
  /** Plugins to register besides core's built-ins. */
  readonly plugins?: readonly Plugin[]
  /** Use this registry (plugins are added to it). */
  readonly registry?: PluginRegistry
  /**
   * Layer weights for `forward()` with hidden states: host arrays, or where they come from
   * (a GPU backend then generates or streams them onto the device, never through host f32).
   * Default: the config's `weights` section when it has one (seeded, or a safetensors file).
   */
  readonly weights?: LayerWeightsType | WeightSource
  /** A backend instance to use instead of creating `config.backend`. */
  readonly backend?: Backend
  /** Parent container (defaults to a fresh child of tsyringe's root). */
  readonly parent?: DependencyContainer
  /** Name of the config source, for error messages (a file path). */
  readonly source?: string
  /** Build only what routing needs (`route()`): no backend, expert store or weights. */
  readonly routingOnly?: boolean
}

/** A fresh root for one embedding. Never registers on tsyringe's global container. */
export function createRootContainer(): DependencyContainer {
  return globalContainer.createChildContainer()
}

/** One child per inference session: session-scoped services live here. */
export function createSessionScope(root: DependencyContainer): DependencyContainer {
  return root.createChildContainer()
}

/**
 * Builds a container for a config: validates it (every problem at once), creates the
 * placement, router, policies, dispatcher, store and backend through the registry, and
 * registers them under their tokens. Resolve {@link MoeEngine} from it.
 * @example
 * const c = createMoeContainer({ config: { model: { experts: 8, topK: 2, hidden: 64, intermediate: 128 } } })
 * const engine = c.resolve(MoeEngine)
 */
export function createMoeContainer(options: MoeContainerOptions): DependencyContainer {
  const registry = options.registry ?? createRegistry()
  if (!withCorePlugins.has(registry)) for (const p of corePlugins) registry.register(p)
  for (const p of options.plugins ?? []) registry.register(p)
  // A config resolved for this registry is taken as it is (plugins added since cannot make it invalid).
  const trusted = isResolvedFor<ResolvedConfig>(options.config, registry)
  const config: ResolvedConfig = trusted ? options.config : resolveConfig(options.config, registry, options.source)
  const c = options.parent ?? createRootContainer()
  const base: PluginContext = { model: config.model, devices: config.devices, seed: config.seed }
  // Inputs are values; everything made from them is a factory the container calls once (cached
  // per registration) with its dependencies resolved from the container itself.
  c.register(PluginRegistryToken.key, { useValue: registry })
  c.register(ResolvedConfig.key, { useValue: config })
  c.register(Placement.key, built(() => registry.create('placement', config.placement.use, config.placement.options, base, '/placement')))
  c.register(
    PlacementMap.key,
    built((d) => {
      const placement = d.resolve<Placement>(Placement.key).place({ experts: config.model.experts, devices: config.devices })
      checkPlacement(placement, config)
      return placement
    }),
  )
  const context = (d: DependencyContainer): PluginContext => ({ ...base, placement: d.resolve<PlacementMap>(PlacementMap.key) })
  c.register(Router.key, built((d) => registry.create('router', config.router.use, config.router.options, context(d), '/router')))
  c.register(
    RoutingPolicy.key,
    built((d) => {
      const ctx = context(d)
      return config.policies.map((p, i) => {
        const policy = registry.create('policy', p.use, p.options, ctx, `/policies/${i}`)
        if (!p.fallback) return policy
        const fallback = registry.create('policy', p.fallback.use, p.fallback.options, ctx, `/policies/${i}/fallback`)
        return withFallback(policy, fallback, (e) => {
          const err = pluginError(policy.name, 'apply', e)
          return { code: err.code, message: err.message }
        })
      })
    }),
  )
  c.register(Dispatcher.key, built((d) => registry.create('dispatcher', config.dispatcher.use, config.dispatcher.options, context(d), '/dispatcher')))
  const store = options.routingOnly ? undefined : config.store
  if (store) c.register(ExpertStore.key, built((d) => registry.create('store', store.use, store.options, context(d), '/store')))
  if (options.routingOnly) {
    // routing needs no backend, store or weights
  } else if (options.backend) c.register(Backend.key, { useValue: options.backend })
  else if (registry.has('backend', config.backend.use)) {
    c.register(Backend.key, built((d) => registry.create('backend', config.backend.use, config.backend.options, context(d), '/backend')))
  } else if (!trusted && (options.config as { backend?: unknown })?.backend) {
    // (a resolved config's backend is the default where the config named none: it needs no plugin)
    registry.get('backend', config.backend.use, '/backend/use') // throws PLUGIN_UNKNOWN naming the field
  }
  const weights = options.routingOnly ? undefined : (options.weights ?? weightSourceOf(config))
  if (weights && !('kind' in weights)) c.register(LayerWeights.key, { useValue: checkWeights(weights, config) })
  else if (weights?.kind === 'host') c.register(LayerWeights.key, { useValue: checkWeights(weights.weights, config) })
  else if (weights) c.register(LayerWeightSource.key, { useValue: weights })
  c.register(MoeEngine, { useClass: MoeEngine })
  // Build every plugin object now, in dependency order, so a bad config or a failing plugin
  // factory throws here (as it always has) rather than at the first resolve.
  for (const token of [Placement, PlacementMap, Router, RoutingPolicy, Dispatcher, ExpertStore, Backend] as const) {
    if (c.isRegistered(token.key)) c.resolve(token.key)
  }
  return c
}

/** A registration whose object the container builds once, on first resolve, from the container. */
function built<T>(factory: (d: DependencyContainer) => T): { useFactory: (d: DependencyContainer) => T } {
  return { useFactory: instanceCachingFactory(factory) }
}

/** The weight source a config's `weights` section names (seeded, or a safetensors file), if any. */
export function weightSourceOf(config: ResolvedConfig): WeightSource | undefined {
  const w = config.weights
  if (!w) return undefined
  if (w.file) {
    return { kind: 'safetensors', file: w.file, layer: w.layer ?? 0, layout: w.layout ?? (config.model.normalizeTopK ? 'mixtral' : 'olmoe') }
  }
  return { kind: 'seeded', seed: w.seed ?? config.seed, std: w.std ?? 0.02 }
}

function checkWeights(w: LayerWeightsType, config: ResolvedConfig): LayerWeightsType {
  const m = config.model
  if (w.shape.experts !== m.experts || w.shape.hidden !== m.hidden || w.shape.intermediate !== m.intermediate) {
    throw new MoeError(
      ErrorCodes.SHAPE_MISMATCH,
      `weights are E=${w.shape.experts} H=${w.shape.hidden} I=${w.shape.intermediate} but the config says E=${m.experts} H=${m.hidden} I=${m.intermediate}`,
      { path: '/model' },
    )
  }
  return w
}

/** Shortcut: a container for the config, resolved to its {@link MoeEngine}. */
export function createMoe(options: MoeContainerOptions): MoeEngine {
  return createMoeContainer(options).resolve(MoeEngine)
}

function checkPlacement(p: PlacementMap, config: ResolvedConfig): void {
  const bad = (why: string) => {
    throw new MoeError(ErrorCodes.PLUGIN_FAILED, `placement ${p.strategy} is invalid: ${why}`, { plugin: config.placement.use, path: '/placement' })
  }
  if (p.experts !== config.model.experts) bad(`it places ${p.experts} experts, the model has ${config.model.experts}`)
  if (p.devices !== config.devices) bad(`it uses ${p.devices} devices, the config has ${config.devices}`)
  p.replicas.forEach((r, e) => {
    if (r.length === 0) bad(`expert ${e} has no device`)
    for (const d of r) if (!Number.isInteger(d) || d < 0 || d >= p.devices) bad(`expert ${e} is on device ${d}`)
  })
}
