/**
 * The CLI's config: core's loader (`@moe-route/core/node` loadConfig: bounded reads, plugin
 * manifests checked before any plugin code runs, the config resolved once; see SECURITY.md)
 * with the CLI's embedded default, its first-party plugins, the c2r profile option, the
 * WebGPU backend loaded only when named, and memory and workload checks.
 */
import { totalmem } from 'node:os'
import {
  ErrorCodes,
  MoeError,
  checkMemory,
  estimateRunMemory,
  isMoeError,
  type MoeConfig,
  type MoeIssue,
  type Plugin,
  type ResolvedConfig,
} from '@moe-route/core'
import { collectConfigIssues as collectIssues, loadConfig as loadWith, type ConfigSourceOptions, type LoadedConfig, type PluginSecurity } from '@moe-route/core/node'
import { workloadFromSpec } from '@moe-route/workloads'
import { builtinPlugins } from './builtins.js'
import { resolveC2rProfile, resolveC2rProfileIssues } from './c2r-profile.js'
import { DEFAULT_CONFIG } from './default-config.js'
import { loadBackendPlugin } from './webgpu.js'

export type { LoadedConfig } from '@moe-route/core/node'

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

/** What the CLI completes and checks every config with (core's loader does the rest). */
function cliSource(path: string | undefined, cwd: string, checks: ConfigSourceOptions['checks']): ConfigSourceOptions {
  return {
    ...(path !== undefined ? { path } : {}),
    cwd,
    defaults: DEFAULT_CONFIG,
    fillDefaults: withDefaults,
    plugins: builtinPlugins,
    lazyPlugins: webGpuIfNamed,
    prepare: (raw, dir, issues) => (issues ? resolveC2rProfileIssues(raw, dir, issues) : resolveC2rProfile(raw, dir)),
    checks,
  }
}

/**
 * Reads the config file (default: the embedded one), fills the sections it leaves out from the
 * embedded default, applies a command's `overrides` (which also see what the file itself said),
 * checks it all, then loads the plugins it uses. The config comes back resolved for the
 * registry: `createMoe({ config, registry })` does not check it again.
 */
export async function loadConfig(
  path: string | undefined,
  cwd: string,
  overrides: (raw: MoeConfig, file: Partial<MoeConfig> | null) => MoeConfig = (r) => r,
  options: LoadConfigOptions = {},
): Promise<LoadedConfig> {
  const checks = options.purpose === 'run' ? [checkRunMemory] : options.purpose === 'simulate' ? [checkSimulateMemory] : []
  return loadWith({
    ...cliSource(path, cwd, checks),
    overrides,
    ...(options.execute === false ? { execute: false } : {}),
    ...(options.allowLocalPlugins ? { allowLocalPlugins: true } : {}),
    ...(options.isolatePlugins ? { isolatePlugins: true } : {}),
  })
}

/** Every issue of a config file (schema, plugins, options, workload, memory), without running any plugin. */
export async function collectConfigIssues(path: string, cwd: string): Promise<MoeIssue[]> {
  return collectIssues({ ...cliSource(path, cwd, [checkWorkloadSpec, checkRunMemory]), path })
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

/** The WebGPU backend loads its native addon lazily: only when a config names it. A refusal names `/backend/use`. */
async function webGpuIfNamed(raw: MoeConfig): Promise<readonly Plugin[]> {
  if (raw?.backend?.use !== 'webgpu') return []
  try {
    return [await loadBackendPlugin('webgpu')]
  } catch (e) {
    if (!isMoeError(e) || e.details.path !== undefined) throw e
    throw new MoeError(e.code, e.message, { ...e.details, path: '/backend/use', plugin: 'webgpu' }, { cause: e.cause ?? e })
  }
}
