/** Loads a config file (or the embedded default) and the plugins it names. */
import { resolve } from 'node:path'
import { checkConfig, resolveConfig, type MoeConfig, type MoeIssue, type PluginRegistry, type ResolvedConfig } from '@moe-route/core'
import { readJsonFile } from './context.js'
import { builtinRegistry } from './builtins.js'
import { DEFAULT_CONFIG } from './default-config.js'
import { loadConfigPlugins } from './plugins-loader.js'

/** A loaded config with its registry. */
export interface LoadedConfig {
  readonly raw: MoeConfig
  readonly config: ResolvedConfig
  readonly registry: PluginRegistry
  readonly source: string
}

/** Reads the config file (default: the embedded one), loads its plugins, validates it all. */
export async function loadConfig(path: string | undefined, cwd: string, overrides: (raw: MoeConfig) => MoeConfig = (r) => r): Promise<LoadedConfig> {
  const source = path ? resolve(cwd, path) : 'embedded default config'
  const raw = overrides(path ? (readJsonFile(source) as MoeConfig) : DEFAULT_CONFIG)
  const registry = builtinRegistry()
  await loadConfigPlugins(raw, registry, path ? resolve(source, '..') : cwd)
  const config = resolveConfig(raw, registry, path ?? source)
  return { raw, config, registry, source }
}

/** Every issue of a config file (schema, plugins, options), without throwing for them. */
export async function collectConfigIssues(path: string, cwd: string): Promise<MoeIssue[]> {
  const source = resolve(cwd, path)
  const raw = readJsonFile(source) as MoeConfig
  const registry = builtinRegistry()
  const issues: MoeIssue[] = []
  try {
    await loadConfigPlugins(raw, registry, resolve(source, '..'))
  } catch (e) {
    const err = e as { code?: string; message: string; details?: { path?: string; plugin?: string } }
    issues.push({ code: (err.code ?? 'MOE_ROUTE_ERR_PLUGIN_LOAD_FAILED') as MoeIssue['code'], path: err.details?.path ?? '/plugins', message: err.message, ...(err.details?.plugin ? { plugin: err.details.plugin } : {}) })
  }
  issues.push(...checkConfig(raw, registry).issues)
  return issues
}
