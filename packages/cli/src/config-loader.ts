/**
 * Loads a config file (or the embedded default) and the plugins it names. The config is
 * checked in full — schema, plugin names, core ranges and options, all read from manifests —
 * before any plugin code runs; only commands that run the layer then import the plugins the
 * config uses. See SECURITY.md.
 */
import { existsSync } from 'node:fs'
import { totalmem } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import {
  ErrorCodes,
  MoeError,
  checkConfig,
  checkMemory,
  estimateRunMemory,
  isMoeError,
  resolveConfig,
  type MoeConfig,
  type MoeIssue,
  type PluginRegistry,
  type ResolvedConfig,
} from '@moe-route/core'
import { workloadFromSpec } from '@moe-route/workloads'
import { readConfigFile } from './context.js'
import { builtinRegistry } from './builtins.js'
import { resolveC2rProfile, resolveC2rProfileIssues } from './c2r-profile.js'
import { DEFAULT_CONFIG } from './default-config.js'
import { describeConfigPlugins, importUsedPlugins, type PluginSecurity } from './plugins-loader.js'
import { loadBackendPlugin } from './webgpu.js'

/** A loaded config with its registry. */
export interface LoadedConfig {
  readonly raw: MoeConfig
  readonly config: ResolvedConfig
  readonly registry: PluginRegistry
  readonly source: string
}

/**
 * A config with every top-level section it leaves out taken from the embedded default
 * ({@link DEFAULT_CONFIG}): `{"policies": [...]}` runs the default model and workload under those
 * policies, `{"policies": []}` runs them with none. A section that is given replaces the
 * default's whole (a `model` states its shape in full; `workload` fields default as documented).
 * A config that states a model of another shape (experts, topK) but no workload gets the uniform
 * workload of its shape (`uniform:E=<experts>:k=<topK>`), since the default's recorded Mixtral
 * routing could not feed it.
 */
export function withDefaults(raw: MoeConfig): MoeConfig {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return raw
  const merged: MoeConfig = { ...DEFAULT_CONFIG, ...raw }
  const m = raw.model as Partial<MoeConfig['model']> | undefined
  const d = DEFAULT_CONFIG.model
  if (raw.workload === undefined && m && typeof m === 'object' && (m.experts !== d.experts || m.topK !== d.topK)) {
    const { workload: _w, ...rest } = merged
    const valid = Number.isSafeInteger(m.experts) && Number.isSafeInteger(m.topK) && (m.topK as number) >= 1 && (m.topK as number) <= (m.experts as number)
    // a malformed shape is reported by the schema check; no workload is made up for it
    return valid ? { ...rest, workload: { ...DEFAULT_CONFIG.workload, source: `uniform:E=${m.experts}:k=${m.topK}` } } : rest
  }
  return merged
}

/** Options of {@link loadConfig}. */
export interface LoadConfigOptions extends PluginSecurity {
  /**
   * Import the plugins the config uses (default true). False: only their manifests are read
   * (the registry then describes them; creating one throws).
   */
  readonly execute?: boolean
  /**
   * Refuse a config whose `run` (layer weights on the CPU backend, batches held) or `simulate`
   * (one streamed batch's routing held) would not fit in this machine's memory, with the estimate.
   */
  readonly purpose?: 'run' | 'simulate'
}

/**
 * Reads the config file (default: the embedded one), fills the sections it leaves out from the
 * embedded default, applies a command's `overrides` (which also see what the file itself said),
 * checks it all, then loads the plugins it uses.
 */
export async function loadConfig(
  path: string | undefined,
  cwd: string,
  overrides: (raw: MoeConfig, file: Partial<MoeConfig> | null) => MoeConfig = (r) => r,
  options: LoadConfigOptions = {},
): Promise<LoadedConfig> {
  const source = path ? resolve(cwd, path) : 'embedded default config'
  const dir = path ? dirname(source) : cwd
  const file = path ? filesFrom(configObject(readConfigFile(source), source), dir) : null
  const raw = resolveC2rProfile(overrides(file ? withDefaults(file) : DEFAULT_CONFIG, file), dir)
  const described = builtinRegistry()
  const packages = describeConfigPlugins(raw, described, { from: dir, projectRoot: projectRoot(dir) })
  await registerWebGpuIfNamed(raw, described)
  // every check, with no plugin code run yet
  const checked = resolveConfig(raw, described, path ?? source)
  if (options.purpose === 'run') checkRunMemory(checked, path ?? source)
  if (options.purpose === 'simulate') checkSimulateMemory(checked, path ?? source)
  if (options.execute === false) return { raw, config: checked, registry: described, source }
  const registry = builtinRegistry()
  await registerWebGpuIfNamed(raw, registry)
  await importUsedPlugins(raw, described, packages, registry, {
    ...(raw.security?.pluginTimeoutMs !== undefined ? { timeoutMs: raw.security.pluginTimeoutMs } : {}),
    ...(options.allowLocalPlugins ? { allowLocalPlugins: true } : {}),
    ...(options.isolatePlugins || raw.security?.isolatePlugins ? { isolatePlugins: true } : {}),
  })
  const config = resolveConfig(raw, registry, path ?? source)
  return { raw, config, registry, source }
}

/** Every issue of a config file (schema, plugins, options, workload, memory), without running any plugin. */
export async function collectConfigIssues(path: string, cwd: string): Promise<MoeIssue[]> {
  const source = resolve(cwd, path)
  const dir = dirname(source)
  const issues: MoeIssue[] = []
  const parsed = readConfigFile(source)
  try {
    configObject(parsed, source)
  } catch (e) {
    if (!isMoeError(e)) throw e
    return [{ code: e.code, path: '/', message: e.message }]
  }
  const raw = resolveC2rProfileIssues(withDefaults(parsed as MoeConfig), dir, issues)
  const registry = builtinRegistry()
  describeConfigPlugins(raw, registry, { from: dir, projectRoot: projectRoot(dir), issues })
  try {
    await registerWebGpuIfNamed(raw, registry)
  } catch (e) {
    const err = e as { code?: string; message: string }
    issues.push({ code: (err.code ?? ErrorCodes.BACKEND_UNAVAILABLE) as MoeIssue['code'], path: '/backend/use', message: err.message, plugin: 'webgpu' })
  }
  // A package that failed to load is also an unknown plugin for checkConfig: report it once.
  const failed = new Set(issues.map((i) => i.path))
  const checked = checkConfig(raw, registry)
  issues.push(...checked.issues.filter((i) => !(i.code === ErrorCodes.PLUGIN_UNKNOWN && failed.has(i.path))))
  if (checked.issues.length === 0 && checked.config) {
    for (const check of [() => checkWorkloadSpec(checked.config!), () => checkRunMemory(checked.config!, source)]) {
      try {
        check()
      } catch (e) {
        if (!isMoeError(e)) throw e
        issues.push({ code: e.code, path: String(e.details.path ?? '/'), message: e.message })
      }
    }
  }
  return issues
}

/** A parsed config must be a JSON object (not null, an array or a number). */
function configObject(value: unknown, source: string): MoeConfig {
  if (!value || typeof value !== 'object' || Array.isArray(value)) {
    throw new MoeError(ErrorCodes.CONFIG_INVALID, `${source} must hold a JSON object (a moe-route config), not ${value === null ? 'null' : Array.isArray(value) ? 'an array' : typeof value}`, {
      path: '/',
      file: source,
    })
  }
  return value as MoeConfig
}

/** `weights.file` is relative to the config's folder (as c2r profiles are). */
function filesFrom(raw: MoeConfig, dir: string): MoeConfig {
  const file = raw.weights && typeof raw.weights === 'object' ? raw.weights.file : undefined
  return typeof file === 'string' && file.length > 0 ? { ...raw, weights: { ...raw.weights, file: resolve(dir, file) } } : raw
}

/**
 * The folder local plugin files must lie in: the nearest folder at or above the config's that
 * holds a package.json, else the config's folder itself.
 */
export function projectRoot(configDir: string): string {
  for (let d = resolve(configDir); ; d = dirname(d)) {
    if (existsSync(join(d, 'package.json'))) return d
    if (dirname(d) === d) return resolve(configDir)
  }
}

/** Host memory `run` may plan for: 80% of this machine's. */
export function hostMemoryBudget(): number {
  return Math.floor(totalmem() * 0.8)
}

/** Refuses a run that would not fit in this machine's memory (MOE_ROUTE_ERR_SIZE_LIMIT with the estimate). */
function checkRunMemory(config: ResolvedConfig, source: string): void {
  const w = config.workload
  const capacity = config.stream?.capacity ?? 4
  const inFlight = config.stream?.maxInFlight ?? 4
  const estimate = estimateRunMemory(config.model, {
    tokensPerBatch: w?.tokensPerBatch ?? 512,
    batchesHeld: Math.max(capacity, inFlight) + inFlight,
    hostWeights: config.backend.use === 'cpu',
  })
  checkMemory(estimate, hostMemoryBudget(), `running ${source}`, '/model')
}

/** `simulate` holds every batch's scores and routing: batches·T·(3·E + 2·k)·4 bytes. */
function checkSimulateMemory(config: ResolvedConfig, source: string): void {
  // batches are streamed (one in memory per thread), so the bound is one batch's routing, as if
  // its score matrix were materialised
  const T = config.workload?.tokensPerBatch ?? 512
  const { experts: E, topK: k } = config.model
  const bytes = T * (3 * E + 2 * k) * 4
  checkMemory({ bytes, parts: [{ what: `one batch's routing`, bytes, formula: 'T·(3·E + 2·k)·4 B' }] }, hostMemoryBudget(), `simulating ${source}`, '/workload/tokensPerBatch')
}

/** A workload spec (not a trace file) must parse and match the model (cheap: nothing is generated). */
function checkWorkloadSpec(config: ResolvedConfig): void {
  const src = config.workload?.source
  if (!src || /\.(jsonl|ndjson|npy|safetensors)$/i.test(src)) return
  let gen
  try {
    gen = workloadFromSpec(src)
  } catch (e) {
    if (!isMoeError(e)) throw e
    throw new MoeError(e.code, e.message, { ...e.details, path: '/workload/source' })
  }
  const { experts, topK } = config.model
  if (gen.experts !== experts || gen.topK !== topK) {
    throw new MoeError(ErrorCodes.SHAPE_MISMATCH, `workload ${src} routes ${gen.experts} experts top-${gen.topK}, but the model is ${experts} experts top-${topK}`, { path: '/workload/source' })
  }
}

/** The WebGPU backend loads its native addon lazily: only when a config names it. */
async function registerWebGpuIfNamed(raw: MoeConfig, registry: PluginRegistry): Promise<void> {
  if (raw?.backend?.use === 'webgpu' && !registry.has('backend', 'webgpu')) registry.register(await loadBackendPlugin('webgpu'))
}
