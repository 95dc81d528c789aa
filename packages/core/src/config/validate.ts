/**
 * Config validation that reports every problem at once, each with the JSON path of the
 * field and, for plugin options, the plugin's name.
 */
import { ErrorCodes, MoeError, type MoeIssue } from '../errors.js'
import type { PluginRegistry } from '../plugin/registry.js'
import type { PluginKind } from '../plugin/types.js'
import { ajvIssues, compileSchema, formatIssues } from '../schema/ajv.js'
import type { ModelShape } from '../types.js'
import { defineToken } from '../tokens.js'
import { configSchema, type MoeConfig, type PluginRef, type PolicyRef } from './config.schema.js'

/** A config with every default filled in. */
export interface ResolvedConfig extends MoeConfig {
  readonly model: ModelShape
  readonly router: PluginRef
  readonly policies: readonly PolicyRef[]
  readonly dispatcher: PluginRef
  readonly placement: PluginRef
  readonly backend: PluginRef
  readonly devices: number
  readonly seed: number
  readonly activationBytes: 1 | 2 | 4
}

/** The resolved config of a container. */
export const ResolvedConfig = defineToken<ResolvedConfig>('ResolvedConfig')

/** Defaults applied to absent fields. */
export const CONFIG_DEFAULTS = {
  router: { use: 'softmax-top-k' },
  dispatcher: { use: 'exact-size' },
  placement: { use: 'contiguous' },
  backend: { use: 'cpu' },
  devices: 1,
  seed: 1,
  activationBytes: 2,
} as const

/**
 * Checks a parsed config: the schema, cross-field rules (topK ≤ experts, devices ≤ experts),
 * and, with a registry, that every plugin exists and its options pass its schema.
 * Returns all issues; never throws for bad input.
 */
export function checkConfig(raw: unknown, registry?: PluginRegistry): { config?: ResolvedConfig; issues: MoeIssue[] } {
  const validate = compileSchema(configSchema)
  if (!validate(raw)) {
    const issues = ajvIssues(validate.errors, '', ErrorCodes.CONFIG_INVALID)
    return { issues }
  }
  const cfg = raw as MoeConfig
  const issues: MoeIssue[] = []
  if (cfg.model.topK > cfg.model.experts) {
    issues.push({ code: ErrorCodes.TOPK_EXCEEDS_EXPERTS, path: '/model/topK', message: `must be ≤ experts (${cfg.model.experts}), got ${cfg.model.topK}` })
  }
  const devices = cfg.devices ?? CONFIG_DEFAULTS.devices
  if (devices > cfg.model.experts && !cfg.placement) {
    issues.push({ code: ErrorCodes.CONFIG_INVALID, path: '/devices', message: `${devices} devices for ${cfg.model.experts} experts: the contiguous placement needs devices ≤ experts` })
  }
  const config: ResolvedConfig = {
    ...cfg,
    model: { ...cfg.model, normalizeTopK: cfg.model.normalizeTopK ?? true },
    router: cfg.router ?? CONFIG_DEFAULTS.router,
    policies: cfg.policies ?? [],
    dispatcher: cfg.dispatcher ?? CONFIG_DEFAULTS.dispatcher,
    placement: cfg.placement ?? CONFIG_DEFAULTS.placement,
    backend: cfg.backend ?? CONFIG_DEFAULTS.backend,
    devices,
    seed: cfg.seed ?? CONFIG_DEFAULTS.seed,
    activationBytes: cfg.activationBytes ?? CONFIG_DEFAULTS.activationBytes,
  }
  if (registry) {
    const refs: [PluginKind, PluginRef | undefined, string][] = [
      ['router', config.router, '/router'],
      ['dispatcher', config.dispatcher, '/dispatcher'],
      ['placement', config.placement, '/placement'],
      ['backend', cfg.backend, '/backend'], // the default (cpu) is optional: routing-only embeddings need none
      ['store', config.store, '/store'],
      ...config.policies.map((p, i) => ['policy', p, `/policies/${i}`] as [PluginKind, PluginRef, string]),
      ...config.policies.map((p, i) => ['policy', p.fallback, `/policies/${i}/fallback`] as [PluginKind, PluginRef | undefined, string]),
    ]
    for (const [kind, ref, path] of refs) {
      if (!ref) continue
      if (!registry.has(kind, ref.use)) {
        const known = registry.list(kind).map((p) => p.name)
        issues.push({ code: ErrorCodes.PLUGIN_UNKNOWN, path: `${path}/use`, message: `unknown ${kind} plugin '${ref.use}' (known: ${known.join(', ') || 'none'})`, plugin: ref.use })
        continue
      }
      issues.push(...registry.checkOptions(registry.get(kind, ref.use), ref.options, `${path}/options`).issues)
    }
  }
  return { config, issues }
}

/** Like {@link checkConfig} but throws MOE_ROUTE_ERR_CONFIG_INVALID listing every issue. */
export function resolveConfig(raw: unknown, registry?: PluginRegistry, source = 'config'): ResolvedConfig {
  const { config, issues } = checkConfig(raw, registry)
  if (issues.length > 0 || !config) {
    throw new MoeError(
      ErrorCodes.CONFIG_INVALID,
      `${source} has ${issues.length} problem${issues.length === 1 ? '' : 's'}:\n${formatIssues(issues)}`,
      { path: issues[0]?.path, issues, file: source },
    )
  }
  return config
}
