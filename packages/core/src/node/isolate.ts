/**
 * Isolation mode for plugins you do not trust (Node only): the package is imported in a worker
 * thread and never in the caller's. Its code gets its own globals and intrinsics (it cannot
 * replace `Math.exp` or pollute `Object.prototype` where routing runs), an empty environment
 * (no secrets from `process.env`), a heap limit, and a time limit on its import and on every
 * call: a call past the limit terminates the worker (an endless loop included) and is
 * MOE_ROUTE_ERR_PLUGIN_TIMEOUT. Calls are synchronous RPCs (the caller waits on an
 * `Atomics.wait`, the reply comes through `receiveMessageOnPort`), so isolated routers,
 * policies, dispatchers and placements keep core's synchronous contracts. A worker thread is
 * not a sandbox for the file system or the network: see SECURITY.md.
 *
 * Written by hand: the known helpers (synckit, piscina) run stateless functions or pools, while a
 * plugin instance keeps state across batches and a hung call must kill exactly its worker.
 */
import { MessageChannel, Worker, receiveMessageOnPort, type MessagePort } from 'node:worker_threads'
import { pathToFileURL } from 'node:url'
import { ErrorCodes, MoeError } from '../errors.js'
import type { PlacementMap } from '../placement/placement.js'
import { definePluginOfKind } from '../plugin/define.js'
import type { Plugin, PluginContext, PluginKind, PluginMeta } from '../plugin/types.js'
import { mulberry32 } from '../util/rng.js'
import { timeoutError, withTimeout } from './bounded.js'
import { checkAgainstManifest, describedPlugin, ownPlugins } from './manifest.js'
import type { PluginPackage } from './resolve.js'

/** Options of {@link isolatedPlugins}. */
export interface IsolateOptions {
  /** Time limit of the import and of each call, ms. */
  readonly timeoutMs: number
  /** Heap limit of the worker, MiB (default 1024). */
  readonly maxHeapMb?: number
}

/** Kinds whose contracts are synchronous data in, data out (stores and backends hold devices and run asynchronously). */
export const ISOLATABLE_KINDS: readonly PluginKind[] = ['router', 'policy', 'dispatcher', 'placement']

const METHODS: Partial<Record<PluginKind, readonly string[]>> = {
  router: ['route'],
  policy: ['apply'],
  dispatcher: ['dispatch'],
  placement: ['place'],
}

/** The worker's source (CommonJS, evaluated by `new Worker(code, { eval: true })`): no file to ship or find. */
const WORKER_SOURCE = `'use strict'
// what this thread's protocol needs, taken before the plugin's code can replace any of it
const { parse, stringify } = JSON
const { store, notify } = Atomics
const { workerData, parentPort } = require('node:worker_threads')
const BRAND = Symbol.for('@moe-route/core:plugin')
const mulberry32 = ${mulberry32.toString()}
const isPlugin = (v) => typeof v === 'object' && v !== null && v[BRAND] === true
function pluginsOf(mod) {
  const found = new Set()
  const visit = (v, depth) => {
    if (isPlugin(v)) found.add(v)
    else if (Array.isArray(v)) v.forEach((x) => visit(x, depth))
    else if (depth < 2 && v && typeof v === 'object') for (const x of Object.values(v)) visit(x, depth + 1)
  }
  visit(mod.default, 1)
  for (const [k, v] of Object.entries(mod)) if (k !== 'default') visit(v, 2)
  return [...found]
}
const json = (v) => (v === undefined ? undefined : parse(stringify(v)))
const errorOf = (e) => ({
  message: e && typeof e.message === 'string' ? e.message : String(e),
  code: e && typeof e.code === 'string' ? e.code : undefined,
  details: e && e.details && typeof e.details === 'object' ? json(e.details) : undefined,
})
;(async () => {
  let plugins
  // an import that never settles must run into the caller's time limit, not end this thread quietly
  const alive = setInterval(() => {}, 1 << 30)
  try {
    plugins = pluginsOf(await import(workerData.entry))
  } catch (e) {
    parentPort.postMessage({ type: 'error', error: errorOf(e) })
    return
  } finally {
    clearInterval(alive)
  }
  const metas = plugins.map((p) => ({ kind: p.kind, meta: { name: p.meta.name, package: p.meta.package, version: p.meta.version, core: p.meta.core,
    description: p.meta.description, device: p.meta.device, schema: json(p.meta.schema), defaultOptions: json(p.meta.defaultOptions) } }))
  const byKey = new Map(plugins.map((p) => [p.kind + ':' + p.meta.name, p]))
  const instances = new Map()
  let next = 1
  const port = workerData.port
  port.on('message', async (m) => {
    let reply
    try {
      if (m.op === 'create') {
        const instance = byKey.get(m.key).create(m.options, m.context)
        const id = next++
        instances.set(id, instance)
        reply = { ok: true, value: { id, name: String(instance && instance.name) } }
      } else if (m.op === 'call') {
        const instance = instances.get(m.id)
        const args = m.method === 'apply' ? [m.args[0], { ...m.args[1], random: mulberry32(m.args[1].randomSeed) }] : m.args
        let value = instance[m.method](...args)
        if (value && typeof value.then === 'function') value = await value
        reply = { ok: true, value }
      } else if (m.op === 'dispose') {
        const instance = instances.get(m.id)
        instances.delete(m.id)
        if (instance && typeof instance.dispose === 'function') await instance.dispose()
        reply = { ok: true }
      }
    } catch (e) {
      reply = { ok: false, error: errorOf(e) }
    }
    try {
      port.postMessage(reply)
    } catch (e) {
      port.postMessage({ ok: false, error: { message: 'its result cannot be sent between threads: ' + errorOf(e).message } })
    }
    store(workerData.flag, 0, 1)
    notify(workerData.flag, 0)
  })
  parentPort.postMessage({ type: 'ready', metas })
})()
`

interface Reply {
  ok: boolean
  value?: unknown
  error?: { message: string; code?: string; details?: Record<string, unknown> }
}

/** One worker holding one package's plugins, and the synchronous calls into it. */
class PluginWorker {
  readonly #worker: Worker
  readonly #port: MessagePort
  readonly #flag: Int32Array
  readonly #timeoutMs: number
  #dead: string | null = null
  #live = 0

  constructor(entry: string, options: IsolateOptions) {
    this.#flag = new Int32Array(new SharedArrayBuffer(4))
    const { port1, port2 } = new MessageChannel()
    this.#port = port1
    this.#timeoutMs = options.timeoutMs
    this.#worker = new Worker(WORKER_SOURCE, {
      eval: true,
      workerData: { entry: pathToFileURL(entry).href, flag: this.#flag, port: port2 },
      transferList: [port2],
      env: {},
      resourceLimits: { maxOldGenerationSizeMb: options.maxHeapMb ?? 1024 },
    })
    this.#worker.unref()
    this.#worker.on('error', (e) => {
      this.#dead ??= `its worker failed: ${e.message}`
    })
    this.#worker.on('exit', () => {
      this.#dead ??= 'its worker exited'
    })
  }

  /** Resolves with the metas of the plugins the module exports, once imported. */
  ready(plugin: string): Promise<{ kind: PluginKind; meta: PluginMeta }[]> {
    const started = new Promise<{ kind: PluginKind; meta: PluginMeta }[]>((resolve, reject) => {
      this.#worker.once('message', (m: { type: string; metas?: { kind: PluginKind; meta: PluginMeta }[]; error?: Reply['error'] }) => {
        if (m.type === 'ready') resolve(m.metas!)
        else reject(new MoeError(ErrorCodes.PLUGIN_LOAD_FAILED, `importing plugin package ${plugin} failed: ${m.error?.message}`, { plugin }))
      })
      this.#worker.once('error', (e) => reject(new MoeError(ErrorCodes.PLUGIN_LOAD_FAILED, `importing plugin package ${plugin} failed: ${e.message}`, { plugin }, { cause: e })))
      this.#worker.once('exit', (code) => reject(new MoeError(ErrorCodes.PLUGIN_LOAD_FAILED, `importing plugin package ${plugin} failed: its worker exited (${code})`, { plugin })))
    })
    return withTimeout(started, this.#timeoutMs, () => {
      this.terminate('its import did not finish in time')
      return timeoutError(plugin, 'import', this.#timeoutMs)
    })
  }

  /** A synchronous call into the worker; past the limit the worker is terminated. */
  call(plugin: string, hook: string, message: Record<string, unknown>): unknown {
    if (this.#dead) throw new MoeError(ErrorCodes.PLUGIN_FAILED, `plugin ${plugin} cannot run ${hook}: ${this.#dead}`, { plugin, hook })
    Atomics.store(this.#flag, 0, 0)
    this.#port.postMessage(message)
    if (Atomics.wait(this.#flag, 0, 0, this.#timeoutMs) === 'timed-out') {
      this.terminate(`${hook} did not finish in time`)
      throw timeoutError(plugin, hook, this.#timeoutMs)
    }
    const reply = receiveMessageOnPort(this.#port)?.message as Reply | undefined
    if (!reply) throw new MoeError(ErrorCodes.PLUGIN_FAILED, `plugin ${plugin} sent no reply to ${hook}`, { plugin, hook })
    if (reply.ok) return reply.value
    const e = reply.error!
    if (e.code && e.code.startsWith('MOE_ROUTE_ERR_')) throw new MoeError(e.code as `MOE_ROUTE_ERR_${string}`, e.message, { ...(e.details ?? {}), plugin, hook })
    throw new Error(e.message)
  }

  /** False once the worker was terminated or exited. */
  get alive(): boolean {
    return this.#dead === null
  }

  retain(): void {
    this.#live++
  }

  release(): void {
    if (--this.#live <= 0) this.terminate('its instances were disposed')
  }

  terminate(why: string): void {
    this.#dead ??= why
    void this.#worker.terminate()
  }
}

/**
 * Imports a plugin package in a worker thread and returns plugins that run there: same meta
 * (the manifest's, checked against what the module exports), `create` and every hook forwarded
 * as synchronous calls with a time limit.
 * @throws MOE_ROUTE_ERR_PLUGIN_TIMEOUT when the import does not finish in time;
 * MOE_ROUTE_ERR_PLUGIN_LOAD_FAILED when it throws, or for a store or backend plugin;
 * MOE_ROUTE_ERR_PLUGIN_MANIFEST_MISMATCH when the module differs from its manifest.
 */
export async function isolatedPlugins(pkg: PluginPackage, options: IsolateOptions): Promise<Plugin[]> {
  for (const p of pkg.manifest.plugins) {
    if (!ISOLATABLE_KINDS.includes(p.kind)) {
      throw new MoeError(ErrorCodes.PLUGIN_LOAD_FAILED, `${pkg.name}: ${p.kind} plugin ${p.name} cannot run isolated (only ${ISOLATABLE_KINDS.join(', ')} plugins can); run it without isolation if you trust it`, {
        plugin: p.name,
      })
    }
  }
  const worker = new PluginWorker(pkg.entry, options)
  let metas
  try {
    const source = { name: pkg.name, version: pkg.version, manifest: pkg.manifest, partial: pkg.local }
    metas = ownPlugins(await worker.ready(pkg.spec), source)
    if (metas.length === 0) throw new MoeError(ErrorCodes.PLUGIN_INVALID, `${pkg.spec} exports no moe-route plugin (expected a default export made by definePolicy/defineRouter/...)`, { plugin: pkg.spec })
    checkAgainstManifest(metas, source)
  } catch (e) {
    worker.terminate('its import failed')
    throw e
  }
  const exported = new Set(metas.map((m) => `${m.kind}:${m.meta.name}`))
  return pkg.manifest.plugins
    .filter((entry) => exported.has(`${entry.kind}:${entry.name}`))
    .map((entry) => {
      const { meta } = describedPlugin(entry, { name: pkg.name, version: pkg.version, manifest: pkg.manifest })
      const key = `${entry.kind}:${entry.name}`
      return definePluginOfKind(entry.kind, { meta, create: (options: unknown, context: PluginContext) => isolatedInstance(worker, entry.kind, entry.name, key, options, context) } as never) as Plugin
    })
}

function isolatedInstance(worker: PluginWorker, kind: PluginKind, plugin: string, key: string, options: unknown, context: PluginContext): unknown {
  const ctx = { model: context.model, devices: context.devices, seed: context.seed, ...(context.placement ? { placement: plainPlacement(context.placement) } : {}) }
  const { id, name } = worker.call(plugin, 'create', { op: 'create', key, options, context: ctx }) as { id: number; name: string }
  worker.retain()
  const instance: Record<string, unknown> = { name }
  for (const method of METHODS[kind] ?? []) {
    instance[method] = (...args: unknown[]) => worker.call(plugin, method, { op: 'call', id, method, args: plainArgs(method, args) })
  }
  let disposed = false
  instance.dispose = () => {
    if (disposed) return
    disposed = true
    try {
      // a worker already terminated (after a timeout) has nothing left to dispose
      if (worker.alive) worker.call(plugin, 'dispose', { op: 'dispose', id })
    } finally {
      worker.release()
    }
  }
  return instance
}

/** Arguments as data: contexts lose their functions (a policy's `random` is rebuilt from its seed in the worker). */
function plainArgs(method: string, args: unknown[]): unknown[] {
  if (method === 'apply') {
    const ctx = args[1] as { placement: PlacementMap; batchId: number; random: () => number; randomSeed?: number }
    // without the seed, draw one from the caller's stream: still deterministic for a seeded caller
    const randomSeed = ctx.randomSeed ?? Math.floor(ctx.random() * 4294967296)
    return [args[0], { placement: plainPlacement(ctx.placement), batchId: ctx.batchId, randomSeed }]
  }
  if (method === 'dispatch') {
    const ctx = args[1] as { placement: PlacementMap; bytesPerToken: number }
    return [args[0], { placement: plainPlacement(ctx.placement), bytesPerToken: ctx.bytesPerToken }]
  }
  return args
}

function plainPlacement(p: PlacementMap): PlacementMap {
  return { devices: p.devices, experts: p.experts, replicas: p.replicas.map((r) => [...r]), strategy: p.strategy }
}
