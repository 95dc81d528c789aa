/** Loads a config file (or the embedded default) and the plugins it names. */
import { resolve } from 'node:path'
import { ErrorCodes, checkConfig, resolveConfig, type MoeConfig, type MoeIssue, type PluginRegistry, type ResolvedConfig } from '@moe-route/core'
import { readConfigFile } from './context.js'
import { builtinRegistry } from './builtins.js'
import { resolveC2rProfile, resolveC2rProfileIssues } from './c2r-profile.js'
import { DEFAULT_CONFIG } from './default-config.js'
import { loadConfigPlugins } from './plugins-loader.js'
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
 */
export function withDefaults(raw: MoeConfig): MoeConfig {
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return raw
  return { ...DEFAULT_CONFIG, ...raw }
}

/**
 * Reads the config file (default: the embedded one), fills the sections it leaves out from the
 * embedded default, applies a command's `overrides` (which also see what the file itself said),
 * loads its plugins and validates it all.
 */
export async function loadConfig(
  path: string | undefined,
  cwd: string,
  overrides: (raw: MoeConfig, file: Partial<MoeConfig> | null) => MoeConfig = (r) => r,
): Promise<LoadedConfig> {
  const source = path ? resolve(cwd, path) : 'embedded default config'
  const file = path ? (readConfigFile(source) as MoeConfig) : null
  const raw = resolveC2rProfile(overrides(file ? withDefaults(file) : DEFAULT_CONFIG, file), path ? resolve(source, '..') : cwd)
  const registry = builtinRegistry()
  await loadConfigPlugins(raw, registry, path ? resolve(source, '..') : cwd)
  await registerWebGpuIfNamed(raw, registry)
  const config = resolveConfig(raw, registry, path ?? source)
  return { raw, config, registry, source }
}

/** Every issue of a config file (schema, plugins, options), without throwing for them. */
export async function collectConfigIssues(path: string, cwd: string): Promise<MoeIssue[]> {
  const source = resolve(cwd, path)
  const issues: MoeIssue[] = []
  const raw = resolveC2rProfileIssues(withDefaults(readConfigFile(source) as MoeConfig), resolve(source, '..'), issues)
  const registry = builtinRegistry()
  await loadConfigPlugins(raw, registry, resolve(source, '..'), issues)
  try {
    await registerWebGpuIfNamed(raw, registry)
  } catch (e) {
    const err = e as { code?: string; message: string }
    issues.push({ code: (err.code ?? ErrorCodes.BACKEND_UNAVAILABLE) as MoeIssue['code'], path: '/backend/use', message: err.message, plugin: 'webgpu' })
  }
  // A package that failed to load is also an unknown plugin for checkConfig: report it once.
  const failed = new Set(issues.map((i) => i.path))
  issues.push(...checkConfig(raw, registry).issues.filter((i) => !(i.code === ErrorCodes.PLUGIN_UNKNOWN && failed.has(i.path))))
  return issues
}

/** The WebGPU backend loads its native addon lazily: only when a config names it. */
async function registerWebGpuIfNamed(raw: MoeConfig, registry: PluginRegistry): Promise<void> {
  if (raw?.backend?.use === 'webgpu' && !registry.has('backend', 'webgpu')) registry.register(await loadBackendPlugin('webgpu'))
}
