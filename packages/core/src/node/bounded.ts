/**
 * Time limits on plugin code (Node only). A plugin's import and every call into it (create,
 * route, apply, dispatch, place, prepare, …) get a limit; going past it is
 * MOE_ROUTE_ERR_PLUGIN_TIMEOUT naming the plugin and the hook, never a hang.
 *
 * Synchronous calls run under a `vm` watchdog (Node's script `timeout`, which interrupts even
 * an endless loop and leaves the process usable); promises are raced against a timer. The
 * watchdog costs a thread start per call (~0.2 ms on a 2-core VM; see bench/plugin-isolation.bench.ts),
 * so core's and the CLI's own plugins run without it: it wraps plugins loaded from packages.
 */
import vm from 'node:vm'
import { ErrorCodes, MoeError } from '../errors.js'
import { definePluginOfKind } from '../plugin/define.js'
import type { Plugin } from '../plugin/types.js'

/** The error of a plugin that ran past its limit. */
export function timeoutError(plugin: string, hook: string, ms: number): MoeError {
  return new MoeError(ErrorCodes.PLUGIN_TIMEOUT, `plugin ${plugin} did not finish ${hook} within ${ms} ms`, { plugin, hook, timeoutMs: ms })
}

/**
 * Settles like `promise`, or rejects with `onTimeout()` after `ms` milliseconds. The timer is
 * cleared when the promise settles first, so it never keeps the process alive.
 */
export function withTimeout<T>(promise: PromiseLike<T>, ms: number, onTimeout: () => Error): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(onTimeout()), ms)
  })
  return Promise.race([Promise.resolve(promise), limit]).finally(() => clearTimeout(timer))
}

const context = vm.createContext(Object.create(null) as Record<string, unknown>)
const script = new vm.Script('__moeRouteCall()', { filename: 'moe-route-plugin-call' })

/**
 * Calls `fn` with a time limit: its synchronous part is interrupted after `ms` (an endless loop
 * included), and a promise it returns is raced against the rest of the limit.
 * @throws MOE_ROUTE_ERR_PLUGIN_TIMEOUT naming `plugin` and `hook`.
 */
export function callWithin<T>(fn: () => T, ms: number, plugin: string, hook: string): T {
  const started = performance.now()
  let result: T
  context.__moeRouteCall = fn
  try {
    result = script.runInContext(context, { timeout: ms, breakOnSigint: false }) as T
  } catch (e) {
    if ((e as { code?: string } | null)?.code === 'ERR_SCRIPT_EXECUTION_TIMEOUT') throw timeoutError(plugin, hook, ms)
    throw e
  } finally {
    context.__moeRouteCall = undefined
  }
  if (result && typeof (result as { then?: unknown }).then === 'function') {
    const left = Math.max(1, ms - (performance.now() - started))
    return withTimeout(result as unknown as PromiseLike<unknown>, left, () => timeoutError(plugin, hook, ms)) as T
  }
  return result
}


/**
 * The same plugin with every call into it bounded: `create` and each method of the instances it
 * creates (through a Proxy, so class instances keep their behaviour) run under
 * {@link callWithin}. Functions nested in returned values (a device stage's `when`) are not
 * wrapped.
 * @example
 * registry.register(boundedPlugin(await importedPolicy, 10_000), 'moe-route-policy-x')
 */
export function boundedPlugin<P extends Plugin>(plugin: P, ms: number): P {
  const name = plugin.meta.name
  return definePluginOfKind(plugin.kind, {
    meta: plugin.meta,
    create: (options: unknown, context: unknown) => boundInstance(callWithin(() => plugin.create(options as never, context as never), ms, name, 'create'), ms, name),
  } as never) as P
}

function boundInstance<T>(instance: T, ms: number, plugin: string): T {
  if (!instance || typeof instance !== 'object') return instance
  const wrappers = new Map<PropertyKey, { fn: unknown; wrapped: unknown }>()
  return new Proxy(instance as object, {
    get(target, prop) {
      const value = Reflect.get(target, prop, target)
      if (typeof value !== 'function' || prop === 'constructor') return value
      const cached = wrappers.get(prop)
      if (cached && cached.fn === value) return cached.wrapped
      const hook = String(prop)
      const wrapped = (...args: unknown[]) => callWithin(() => Reflect.apply(value as (...a: unknown[]) => unknown, target, args), ms, plugin, hook)
      wrappers.set(prop, { fn: value, wrapped })
      return wrapped
    },
  }) as T
}
