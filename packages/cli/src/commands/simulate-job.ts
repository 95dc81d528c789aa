/**
 * What `moe-route simulate` runs on every thread: the config (with a sweep point's settings)
 * loaded the same way everywhere, the simulator options, and random access to the workload's
 * batches as routings. Worker threads import this module by URL (`createSimulationJob`), so
 * everything they get is plain data: the config path, the settings, a ready placement.
 */
import { ErrorCodes, MoeError, type MoeConfig, type PlacementMap, type PluginContext, type PluginRef, type Routing, type RoutingPolicy } from '@moe-route/core'
import type { SimulationJob } from '@moe-route/simulator/node'
import * as workloads from '@moe-route/workloads'
import { builtinRegistry } from '../builtins.js'
import { loadConfig, type LoadedConfig } from '../config-loader.js'
import type { PluginSecurity } from '@moe-route/core/node'

/** One `--sweep` setting of a point: a config key and its value. */
export interface SweepSetting {
  readonly key: string
  readonly value: string
}

/** The plain-data input of a simulation job. */
export interface SimulateJobData {
  readonly config?: string
  readonly cwd: string
  readonly devices?: number
  readonly trace?: string
  readonly settings?: readonly SweepSetting[]
  /** How plugin packages may run (the CLI's global flags; plain data, so workers load the same). */
  readonly security?: PluginSecurity
  /** A placement built beforehand (learned placements are built on the first half of the batches). */
  readonly placement?: PlacementMap
  /** Batches to simulate (generator workloads). */
  readonly batchIds?: readonly number[]
}

/** A config loaded for simulation. */
export interface PreparedSimulation {
  readonly loaded: LoadedConfig
  readonly placementRef: PluginRef
  readonly context: PluginContext
  /** The router's top-k convention when it is the plain softmax-top-k (workload routings can be used as they are), else null. */
  readonly plainRouterNormalize: boolean | null
}

const TRACE_FILE = /\.(jsonl|ndjson|npy|safetensors)$/i

/** Keys `--sweep` knows besides config paths. */
export const SWEEP_KEYS = ['capacityFactor', 'devices', 'placement', 'policies'] as const

/**
 * Applies sweep settings to a raw config (before validation). A `policies` setting goes first,
 * so that the other settings (a capacity factor, a dotted `policies.0.options…` path) apply to
 * the stack it chose, whatever the order of the `--sweep` options.
 */
export function applySettings(raw: MoeConfig, settings: readonly SweepSetting[]): MoeConfig {
  let out = structuredClone(raw) as MoeConfig & Record<string, unknown>
  let registry: ReturnType<typeof builtinRegistry> | null = null
  const ordered = [...settings.filter((s) => s.key === 'policies'), ...settings.filter((s) => s.key !== 'policies')]
  for (const { key, value } of ordered) {
    if (key === 'capacityFactor' || key === 'gamma') {
      const gamma = Number(value)
      if (!(gamma > 0)) throw new MoeError(ErrorCodes.INPUT_INVALID, `--sweep ${key}: '${value}' is not a capacity factor > 0`, { path: '--sweep' })
      let hit = 0
      out = {
        ...out,
        policies: (out.policies ?? []).map((p) => {
          registry ??= builtinRegistry()
          const known = registry.has('policy', p.use) ? (registry.get('policy', p.use).meta.schema as { properties?: Record<string, unknown> }).properties : undefined
          if (!(known && 'capacityFactor' in known) && !(p.options && 'capacityFactor' in p.options)) return p
          hit++
          return { ...p, options: { ...(p.options ?? {}), capacityFactor: gamma } }
        }),
      }
      if (hit === 0) throw new MoeError(ErrorCodes.INPUT_INVALID, `--sweep ${key}: no policy of the config takes a capacityFactor (policies: ${(out.policies ?? []).map((p) => p.use).join(', ') || 'none'})`, { path: '--sweep' })
    } else if (key === 'devices') {
      const d = Number(value)
      if (!Number.isInteger(d) || d < 1) throw new MoeError(ErrorCodes.INPUT_INVALID, `--sweep devices: '${value}' is not a positive integer`, { path: '--sweep' })
      out = { ...out, devices: d }
    } else if (key === 'placement') {
      out = { ...out, placement: { ...(out.placement && out.placement.use === value ? out.placement : {}), use: value } }
    } else if (key === 'policies') {
      const names = value === 'none' || value === '' ? [] : value.split('+')
      const current = out.policies ?? []
      out = { ...out, policies: names.map((use) => current.find((p) => p.use === use) ?? { use }) }
    } else {
      out = setPath(out, key, value)
    }
  }
  return out
}

/** Sets a dotted config path (`workload.tokensPerBatch`, `policies.0.options.rounding`) to a JSON or string value. */
function setPath<T>(raw: T, key: string, value: string): T {
  const parts = key.split('.')
  if (parts.some((p) => p === '' || p === '__proto__' || p === 'constructor' || p === 'prototype')) {
    throw new MoeError(ErrorCodes.INPUT_INVALID, `--sweep: '${key}' is not a config key (known: ${SWEEP_KEYS.join(', ')}, or a dotted config path such as workload.tokensPerBatch)`, { path: '--sweep' })
  }
  let parsed: unknown = value
  try {
    parsed = JSON.parse(value)
  } catch {
    // a bare string
  }
  const root = structuredClone(raw) as Record<string, unknown>
  let node: Record<string, unknown> = root
  for (const p of parts.slice(0, -1)) {
    const next = node[p]
    if (next === undefined) node[p] = {}
    else if (typeof next !== 'object' || next === null) {
      throw new MoeError(ErrorCodes.INPUT_INVALID, `--sweep: '${key}' goes through '${p}', which is not an object in the config`, { path: '--sweep' })
    }
    node = node[p] as Record<string, unknown>
  }
  node[parts[parts.length - 1]] = parsed
  return root as T
}

const prepared = new Map<string, Promise<PreparedSimulation>>()

/**
 * Loads the config a simulation runs (settings and flags applied); placement plugins resolved.
 * Loaded once per process and setting (the command, its progress bar and an in-thread job share it).
 */
export function prepareSimulation(data: SimulateJobData): Promise<PreparedSimulation> {
  const key = JSON.stringify([data.config, data.cwd, data.devices, data.trace, data.settings ?? [], data.security ?? {}])
  let p = prepared.get(key)
  if (!p) {
    p = loadSimulation(data)
    prepared.set(key, p)
    p.catch(() => prepared.delete(key))
  }
  return p
}

async function loadSimulation(data: SimulateJobData): Promise<PreparedSimulation> {
  let placementRef: PluginRef = { use: 'contiguous' }
  const loaded = await loadConfig(data.config, data.cwd, (raw0): MoeConfig => {
    const raw = applySettings(raw0, data.settings ?? [])
    const { placement, ...rest } = raw as MoeConfig & { placement?: PluginRef }
    if (placement) placementRef = placement
    return {
      ...rest,
      ...(data.devices ? { devices: data.devices } : {}),
      ...(data.trace && raw.workload ? { workload: { ...raw.workload, source: data.trace } } : data.trace ? { workload: { source: data.trace } } : {}),
    }
  }, { ...data.security, purpose: 'simulate' })
  const { config, registry } = loaded
  const context: PluginContext = { model: config.model, devices: config.devices, seed: config.seed }
  const r = config.router
  const opts = (r.options ?? {}) as { normalizeTopK?: boolean | null }
  const plain = r.use === 'softmax-top-k' && Object.keys(opts).every((k) => k === 'normalizeTopK')
  if (!registry.has('placement', placementRef.use)) registry.get('placement', placementRef.use, '/placement')
  return { loaded, placementRef, context, plainRouterNormalize: plain ? (opts.normalizeTopK ?? config.model.normalizeTopK) : null }
}

/** The generator workload of a config (a spec, not a trace file or record), or null. */
export function generatorOf(prep: PreparedSimulation): workloads.Workload | null {
  const w = prep.loaded.config.workload ?? { source: workloads.DEFAULT_WORKLOAD }
  if (TRACE_FILE.test(w.source)) return null
  let gen: workloads.Workload
  try {
    gen = workloads.workloadFromSpec(w.source)
  } catch {
    return null
  }
  const { experts, topK } = prep.loaded.config.model
  if (gen.experts !== experts || gen.topK !== topK) {
    throw new MoeError(ErrorCodes.SHAPE_MISMATCH, `workload ${w.source} routes ${gen.experts} experts top-${gen.topK}, but the model is ${experts} experts top-${topK}`, { path: '/workload/source' })
  }
  return gen
}

/** Batch `id` of a generator workload as the config's router routes it. */
export function generatorBatch(prep: PreparedSimulation, gen: workloads.Workload, id: number): Routing {
  const { config, registry } = prep.loaded
  const w = config.workload ?? { source: gen.spec }
  const tokensPerBatch = w.tokensPerBatch ?? 512
  const seed = w.seed ?? config.seed
  const run = { tokensPerBatch, batches: 1, seed, startToken: id * tokensPerBatch, firstBatchId: id }
  if (prep.plainRouterNormalize !== null) {
    for (const r of gen.routings({ ...run, normalizeTopK: prep.plainRouterNormalize })) return r
  }
  const router = registry.create('router', config.router.use, config.router.options ?? {}, prep.context, '/router')
  for (const r of gen.routings(run)) return router.route({ tokens: r.tokens, experts: r.experts, scores: r.scores })
  throw new MoeError(ErrorCodes.INPUT_INVALID, `workload ${gen.spec} made no batch ${id}`)
}

/** The config's policy stack on a placement. */
export function policiesOf(prep: PreparedSimulation, placement: PlacementMap): RoutingPolicy[] {
  const { config, registry } = prep.loaded
  const placed: PluginContext = { ...prep.context, placement }
  return config.policies.map((p, i) => registry.create('policy', p.use, p.options ?? {}, placed, `/policies/${i}`))
}

/** The config's placement, built without history (learned placements get `history` from the caller). */
export function placementOf(prep: PreparedSimulation, extra: Record<string, unknown> = {}): PlacementMap {
  const { config, registry } = prep.loaded
  return registry
    .create('placement', prep.placementRef.use, prep.placementRef.options ?? {}, prep.context, '/placement')
    .place({ experts: config.model.experts, devices: config.devices, ...extra })
}

/** The job of a generator workload (what worker threads run). */
export async function createSimulationJob(input: unknown): Promise<SimulationJob> {
  const data = input as SimulateJobData
  const prep = await prepareSimulation(data)
  const gen = generatorOf(prep)
  if (!gen) throw new MoeError(ErrorCodes.INPUT_INVALID, 'a simulation job needs a workload spec (trace files are simulated on one thread)', { path: '/workload/source' })
  const { config } = prep.loaded
  const placement = data.placement ?? placementOf(prep)
  const batches = config.workload?.batches ?? 16
  return {
    options: { model: config.model, placement, policies: policiesOf(prep, placement), seed: config.seed, activationBytes: config.activationBytes },
    batchIds: data.batchIds ?? Array.from({ length: batches }, (_, i) => i),
    batch: (id) => generatorBatch(prep, gen, id),
  }
}
