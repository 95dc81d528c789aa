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
import { trustResolvedConfig } from './trust.js'

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
  const issues: MoeIssue[] = validate(raw) ? [] : ajvIssues(validate.errors, '', ErrorCodes.CONFIG_INVALID)
  if (!raw || typeof raw !== 'object' || Array.isArray(raw)) return { issues }
  // Keep checking what can be checked, so one run reports every problem.
  const cfg = raw as MoeConfig
  // The file schema leaves `model` optional (the CLI fills it from its embedded default); a
  // config that reaches the library must have one.
  if (cfg.model === undefined) issues.push({ code: ErrorCodes.CONFIG_INVALID, path: '/model', message: 'is required' })
  const m = (cfg.model ?? {}) as Partial<MoeConfig['model']>
  if (Number.isInteger(m.topK) && Number.isInteger(m.experts) && m.topK! > m.experts!) {
    issues.push({ code: ErrorCodes.TOPK_EXCEEDS_EXPERTS, path: '/model/topK', message: `must be ≤ experts (${m.experts}), got ${m.topK}` })
  }
  const devices = cfg.devices ?? CONFIG_DEFAULTS.devices
  if (Number.isInteger(devices) && Number.isInteger(m.experts) && devices > m.experts! && !cfg.placement) {
    issues.push({ code: ErrorCodes.CONFIG_INVALID, path: '/devices', message: `${devices} devices for ${m.experts} experts: the contiguous placement needs devices ≤ experts` })
  }
  const stream = cfg.stream
  if (stream && Number.isInteger(stream.maxInFlight) && Number.isInteger(stream.capacity) && stream.maxInFlight! > stream.capacity!) {
    issues.push({ code: ErrorCodes.CONFIG_INVALID, path: '/stream/maxInFlight', message: `must be ≤ stream.capacity (${stream.capacity}), got ${stream.maxInFlight}: batches in flight wait in the stream's queue` })
  }
  if (Array.isArray(cfg.policies)) {
    cfg.policies.forEach((p, i) => {
      if (p && typeof p === 'object' && p.fallback && typeof p.fallback === 'object' && typeof p.use === 'string' && p.fallback.use === p.use) {
        issues.push({ code: ErrorCodes.CONFIG_INVALID, path: `/policies/${i}/fallback/use`, message: `a policy cannot fall back to itself ('${p.use}'): the fallback runs when '${p.use}' throws` })
      }
    })
  }
  const config: ResolvedConfig = {
    ...cfg,
    model: { ...m, normalizeTopK: m.normalizeTopK ?? true } as ModelShape,
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
      ...(Array.isArray(config.policies) ? config.policies : []).map((p, i) => ['policy', p, `/policies/${i}`] as [PluginKind, PluginRef, string]),
      ...(Array.isArray(config.policies) ? config.policies : []).map((p, i) => ['policy', p?.fallback, `/policies/${i}/fallback`] as [PluginKind, PluginRef | undefined, string]),
    ]
    for (const [kind, ref, path] of refs) {
      if (!ref || typeof ref !== 'object' || typeof ref.use !== 'string') continue
      if (!registry.has(kind, ref.use)) {
        const known = registry.list(kind).map((p) => p.name)
        issues.push({ code: ErrorCodes.PLUGIN_UNKNOWN, path: `${path}/use`, message: `unknown ${kind} plugin '${ref.use}' (known: ${known.join(', ') || 'none'})`, plugin: ref.use })
        continue
      }
      issues.push(...registry.checkOptions(registry.get(kind, ref.use), ref.options, `${path}/options`).issues)
    }
  }
  // Deduplicate (schema and semantic checks may both flag a field).
  const seen = new Set<string>()
  const unique = issues.filter((i) => !seen.has(i.path + i.message) && seen.add(i.path + i.message))
  return { config, issues: unique }
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
  // frozen, so what the container trusts is what was checked
  Object.freeze(config)
  if (registry) trustResolvedConfig(config, registry)
  return config
}
