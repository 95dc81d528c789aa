/**
 * Internal (not exported from the package root): which resolved configs the container may take
 * as they are. {@link resolveConfig} records each config it returns with the registry it was
 * checked against; `createMoeContainer` given that config and that registry checks it no second
 * time. A copy (or any other object) is checked again.
 */
import type { PluginRegistry } from '../plugin/registry.js'

/**
 * Resolved configs and the registry each was resolved against. Shared through a global symbol
 * so that core's ESM and CJS builds (and its node subpath) see one table.
 */
const TRUSTED: WeakMap<object, PluginRegistry> = ((globalThis as Record<symbol, unknown>)[Symbol.for('@moe-route/core:resolved-configs')] ??= new WeakMap()) as WeakMap<
  object,
  PluginRegistry
>

/** Internal: records that `config` was resolved for `registry` (the container then checks it no second time). */
export function trustResolvedConfig(config: object, registry: PluginRegistry): void {
  TRUSTED.set(config, registry)
}

/**
 * True when `config` is a config {@link resolveConfig} returned for this registry (unchanged
 * object: a copy is checked again). `C` is the resolved config's type, named by the caller so
 * this table imports nothing from the validator that fills it.
 */
export function isResolvedFor<C extends object = object>(config: unknown, registry: PluginRegistry): config is C {
  return typeof config === 'object' && config !== null && TRUSTED.get(config) === registry
}
