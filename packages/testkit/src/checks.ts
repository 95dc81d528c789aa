/**
 * The conformance checks, as plain functions that throw a {@link ConformanceError} naming the
 * plugin. `policyConformance` registers each as a test; call them directly for custom suites.
 */
import {
  CORE_VERSION,
  compileSchema,
  contiguousPlacement,
  createMoe,
  createRegistry,
  isMoeError,
  isPlugin,
  mixSeed,
  mulberry32,
  type JsonSchema,
  type ModelShape,
  type Plugin,
  type PluginContext,
  type PolicyContext,
  type PolicyOutcome,
  type Routing,
  type RoutingPolicy,
} from '@moe-route/core'
import { MANIFEST_FIELD, checkAgainstManifest, readManifest } from '@moe-route/core/node'
import fc from 'fast-check'
import { cloneRouting, routingCase, type RoutingCase, type RoutingConstraints } from './arbitraries.js'
import { checkOutcome, outcomeFingerprint, sameRouting, type InvariantKind } from './invariants.js'

/** A conformance check failed; `plugin` is the plugin's `meta.name` (or what was passed). */
export class ConformanceError extends Error {
  readonly plugin: string
  constructor(plugin: string, message: string, options?: { cause?: unknown }) {
    super(`${plugin}: ${message}`, options)
    this.name = 'ConformanceError'
    this.plugin = plugin
  }
}

/** Settings shared by the property checks. */
export interface PropertySettings {
  /** Generated cases per property (default 100). */
  readonly runs?: number
  /** fast-check seed, to replay a failure (default: random; printed on failure). */
  readonly seed?: number
  /** Bounds of the generated routings. */
  readonly routings?: RoutingConstraints
  /** Check the capacity the outcome reports (default true). */
  readonly capacity?: boolean
  /** The policy keeps state between batches: skip "same instance, same input, same output". */
  readonly stateful?: boolean
}

const SEMVER = /^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$/
const nameOf = (p: unknown) => (isPlugin(p) ? p.meta.name : 'plugin')
const fail = (plugin: unknown, message: string, cause?: unknown): never => {
  throw new ConformanceError(nameOf(plugin), message, cause === undefined ? undefined : { cause })
}

/**
 * The plugin was made by `definePolicy`, its meta is complete (`name`, `package`, a semver
 * `version`, a `core` range that includes the installed @moe-route/core) and, given the
 * package's package.json, `meta.package`/`meta.version` match it.
 */
export function checkPolicyMeta(plugin: unknown, packageJson?: { readonly name: string; readonly version: string; readonly 'moe-route'?: unknown }): asserts plugin is Plugin<'policy'> {
  if (!isPlugin(plugin)) fail(plugin, 'is not a moe-route plugin: make it with definePolicy() from @moe-route/core')
  const p = plugin as Plugin
  if (p.kind !== 'policy') fail(p, `is a ${p.kind} plugin, not a policy`)
  const { meta } = p
  for (const f of ['name', 'package', 'version', 'core'] as const) {
    if (typeof meta[f] !== 'string' || meta[f].length === 0) fail(p, `meta.${f} must be a non-empty string`)
  }
  if (!/^[a-z0-9][a-z0-9._-]*$/.test(meta.name)) fail(p, `meta.name '${meta.name}' should be a short kebab-case id (it appears in configs, errors and traces)`)
  if (!SEMVER.test(meta.version)) fail(p, `meta.version '${meta.version}' is not a semver version`)
  if (typeof meta.schema !== 'object' || meta.schema === null) fail(p, 'meta.schema must be a JSON Schema object')
  if (typeof meta.defaultOptions !== 'object' || meta.defaultOptions === null) fail(p, 'meta.defaultOptions must be an object')
  if (packageJson) {
    if (meta.package !== packageJson.name) fail(p, `meta.package is '${meta.package}' but package.json says '${packageJson.name}'`)
    if (meta.version !== packageJson.version) fail(p, `meta.version is '${meta.version}' but package.json says '${packageJson.version}'`)
    // the manifest moe-route reads without running the plugin must say what the code says
    if (packageJson[MANIFEST_FIELD] === undefined) fail(p, `package.json has no "${MANIFEST_FIELD}" field: configs cannot check this plugin without running it (write it with manifestOf() from @moe-route/core/node)`)
    try {
      const manifest = readManifest(packageJson, 'package.json')
      checkAgainstManifest([p], { name: packageJson.name, version: packageJson.version, manifest, partial: true })
      if (!manifest.plugins.some((d) => d.kind === p.kind && d.name === meta.name)) fail(p, `package.json "${MANIFEST_FIELD}" does not declare policy '${meta.name}'`)
    } catch (e) {
      if (e instanceof ConformanceError) throw e
      fail(p, (e as Error).message, e)
    }
  }
  try {
    createRegistry().register(p, 'testkit')
  } catch (e) {
    fail(p, `cannot be registered with @moe-route/core ${CORE_VERSION}: ${(e as Error).message}`, e)
  }
}

/** The options schema compiles (shared Ajv of core), and the defaults pass it. */
export function checkOptionsSchema(plugin: Plugin): void {
  let validate
  try {
    validate = compileSchema(plugin.meta.schema)
  } catch (e) {
    fail(plugin, `its options schema does not compile: ${(e as Error).message}`, e)
  }
  if (!validate!(structuredClone(plugin.meta.defaultOptions))) {
    fail(plugin, `its defaultOptions fail its own schema: ${JSON.stringify(validate!.errors)}`)
  }
}

/** An invalid options object and why it is invalid. */
export interface InvalidOptionsCase {
  readonly options: unknown
  readonly why: string
}

const SAMPLES: readonly unknown[] = ['not-a-valid-value', 12345.5, true, { nested: 1 }, [1, 2]]
const matchesType = (v: unknown, type: string): boolean => {
  switch (type) {
    case 'string': return typeof v === 'string'
    case 'number': return typeof v === 'number'
    case 'integer': return Number.isInteger(v)
    case 'boolean': return typeof v === 'boolean'
    case 'object': return typeof v === 'object' && v !== null && !Array.isArray(v)
    case 'array': return Array.isArray(v)
    case 'null': return v === null
    default: return true
  }
}

/**
 * Options that a schema should reject, derived from it: an unknown field (when the schema
 * has `additionalProperties: false`), a value of the wrong type for each typed property, and
 * a value outside each `enum`.
 */
export function invalidOptionsFor(schema: JsonSchema, defaults: object = {}): InvalidOptionsCase[] {
  const cases: InvalidOptionsCase[] = []
  if (schema.additionalProperties === false) cases.push({ options: { ...defaults, notAnOption: 1 }, why: "an unknown field 'notAnOption'" })
  const props = (schema.properties ?? {}) as Record<string, Record<string, unknown>>
  for (const [name, prop] of Object.entries(props)) {
    if (!prop || typeof prop !== 'object') continue
    const types = typeof prop.type === 'string' ? [prop.type] : Array.isArray(prop.type) ? (prop.type as string[]) : []
    if (types.length > 0) {
      const wrong = SAMPLES.find((v) => !types.some((t) => matchesType(v, t)))
      if (wrong !== undefined) cases.push({ options: { ...defaults, [name]: wrong }, why: `${name} = ${JSON.stringify(wrong)} (not ${types.join(' or ')})` })
    }
    if (Array.isArray(prop.enum)) {
      cases.push({ options: { ...defaults, [name]: '__not_in_enum__' }, why: `${name} outside its enum` })
    }
  }
  return cases
}

/**
 * Each invalid options object (derived from the schema, plus `extra`) is rejected with
 * MOE_ROUTE_ERR_PLUGIN_OPTIONS_INVALID whose `details.plugin` is the plugin's name, and a
 * config using it fails validation with an issue naming the plugin.
 */
export function checkInvalidOptions(plugin: Plugin<'policy'>, extra: readonly unknown[] = [], options: { allowUnknownOptions?: boolean } = {}): number {
  if (!options.allowUnknownOptions && plugin.meta.schema.additionalProperties !== false) {
    fail(plugin, 'its options schema accepts unknown fields: set additionalProperties: false so typos in configs are caught (or pass allowUnknownOptions)')
  }
  const cases = [...invalidOptionsFor(plugin.meta.schema, plugin.meta.defaultOptions as object), ...extra.map((o) => ({ options: o, why: JSON.stringify(o) }))]
  const registry = createRegistry([plugin])
  const ctx = pluginContext({ experts: 8, topK: 2 }, 1, 1)
  for (const c of cases) {
    let error: unknown
    try {
      registry.create('policy', plugin.meta.name, c.options, ctx)
    } catch (e) {
      error = e
    }
    if (error === undefined) fail(plugin, `accepted invalid options (${c.why}): ${JSON.stringify(c.options)}`)
    if (!isMoeError(error) || error.code !== 'MOE_ROUTE_ERR_PLUGIN_OPTIONS_INVALID') {
      fail(plugin, `invalid options (${c.why}) threw ${isMoeError(error) ? error.code : String(error)}, expected MOE_ROUTE_ERR_PLUGIN_OPTIONS_INVALID`, error)
    }
    if ((error as { details: { plugin?: string } }).details.plugin !== plugin.meta.name) {
      fail(plugin, `the options error does not name the plugin (details.plugin = ${String((error as { details: { plugin?: string } }).details.plugin)})`)
    }
  }
  return cases.length
}

/** A PluginContext for a model shape (hidden/intermediate are placeholders). */
export function pluginContext(shape: { experts: number; topK: number; normalizeTopK?: boolean }, devices: number, seed: number): PluginContext {
  const model: ModelShape = { experts: shape.experts, topK: shape.topK, hidden: 8, intermediate: 16, normalizeTopK: shape.normalizeTopK ?? false }
  return { model, devices, seed, placement: contiguousPlacement(shape.experts, devices) }
}

/** Creates a policy instance for a generated case, through a registry (options validated). */
export function createPolicyFor(plugin: Plugin<'policy'>, options: unknown, c: RoutingCase): RoutingPolicy {
  const registry = createRegistry([plugin])
  const r = c.routing
  const instance = registry.create('policy', plugin.meta.name, options, pluginContext({ experts: r.experts, topK: r.topK, normalizeTopK: r.normalizeTopK }, c.devices, c.seed))
  if (!instance || typeof instance.apply !== 'function') fail(plugin, 'create() did not return an object with apply()')
  if (instance.name !== plugin.meta.name) fail(plugin, `the instance is named '${instance.name}', expected meta.name '${plugin.meta.name}' (errors and telemetry use it)`)
  return instance
}

/** The PolicyContext the engine would pass for a generated case (seeded random per batch). */
export function policyContextFor(c: RoutingCase): PolicyContext {
  return { placement: contiguousPlacement(c.routing.experts, c.devices), batchId: c.batchId, random: mulberry32(mixSeed(c.seed, c.batchId)) }
}

function applyOnce(plugin: Plugin<'policy'>, policy: RoutingPolicy, routing: Routing, c: RoutingCase): PolicyOutcome {
  try {
    return policy.apply(routing, policyContextFor(c))
  } catch (e) {
    return fail(plugin, `apply() threw on a valid routing (${describeCase(c)}): ${(e as Error)?.message ?? String(e)}`, e)
  }
}

const describeCase = (c: RoutingCase) =>
  `T=${c.routing.tokens} E=${c.routing.experts} k=${c.routing.topK} devices=${c.devices}${c.routing.sourceDevice ? ' with sourceDevice' : ''}${c.routing.decode ? ' decode' : ''}`

function runProperty(plugin: Plugin, settings: PropertySettings, predicate: (c: RoutingCase) => void): void {
  const details = fc.check(fc.property(routingCase(settings.routings), predicate), {
    numRuns: settings.runs ?? 100,
    ...(settings.seed !== undefined ? { seed: settings.seed } : {}),
  })
  if (!details.failed) return
  const error = details.errorInstance
  const message = error instanceof ConformanceError ? error.message.slice(plugin.meta.name.length + 2) : `threw ${String((error as Error)?.message ?? error)}`
  fail(plugin, `${message}\n  (fast-check: seed ${details.seed}, path "${details.counterexamplePath}", shrunk ${details.numShrinks} times; pass { seed: ${details.seed} } to replay)`, error)
}

/**
 * For generated routings, the outcome satisfies the invariants of `kinds` (see
 * `checkOutcome`): shape, conservation, capacity and/or weight.
 */
export function checkPolicyInvariants(plugin: Plugin<'policy'>, options: unknown, kinds: readonly InvariantKind[], settings: PropertySettings = {}): void {
  runProperty(plugin, settings, (c) => {
    const policy = createPolicyFor(plugin, options, c)
    const outcome = applyOnce(plugin, policy, c.routing, c)
    const violations = checkOutcome(c.routing, outcome, { policy: plugin.meta.name, capacity: settings.capacity !== false }).filter((v) => kinds.includes(v.kind))
    if (violations.length > 0) {
      fail(plugin, `on ${describeCase(c)}:\n  ${violations.slice(0, 8).map((v) => v.message).join('\n  ')}${violations.length > 8 ? `\n  … ${violations.length - 8} more` : ''}`)
    }
  })
}

/**
 * Same input and seed give the same outcome: on two fresh instances, and (unless
 * `stateful`) twice on one instance. The input routing is never modified.
 */
export function checkPolicyDeterminism(plugin: Plugin<'policy'>, options: unknown, settings: PropertySettings = {}): void {
  runProperty(plugin, settings, (c) => {
    const before = cloneRouting(c.routing)
    const a = applyOnce(plugin, createPolicyFor(plugin, options, c), c.routing, c)
    if (!sameRouting(before, c.routing)) fail(plugin, `apply() modified its input routing (${describeCase(c)}); routings are immutable: return a new one`)
    const second = createPolicyFor(plugin, options, c)
    const b = applyOnce(plugin, second, cloneRouting(before), c)
    if (outcomeFingerprint(a) !== outcomeFingerprint(b)) fail(plugin, `two instances with the same options, input and seed gave different outcomes (${describeCase(c)})`)
    if (!settings.stateful) {
      const again = applyOnce(plugin, second, cloneRouting(before), c)
      if (outcomeFingerprint(again) !== outcomeFingerprint(b)) fail(plugin, `the same instance gave a different outcome for the same input (${describeCase(c)}); pass stateful: true if that is intended`)
    }
  })
}

/**
 * The plugin works inside the engine from a config: registered with `plugins`, named in
 * `policies`, its telemetry entry carries its name and every pair it drops is counted.
 */
export function checkPolicyInEngine(plugin: Plugin<'policy'>, options: unknown): void {
  const model = { experts: 8, topK: 2, hidden: 8, intermediate: 16, normalizeTopK: true }
  let engine
  try {
    engine = createMoe({ plugins: [plugin], config: { model, devices: 2, seed: 7, policies: [{ use: plugin.meta.name, options: options as Record<string, unknown> }] } })
  } catch (e) {
    fail(plugin, `the engine could not be built from a config naming it: ${(e as Error).message}`, e)
  }
  const random = mulberry32(11)
  for (let id = 0; id < 3; id++) {
    const tokens = 64
    const logits = new Float32Array(tokens * model.experts).map(() => random() * 6 - 3)
    let result
    try {
      result = engine!.route({ id, tokens, logits, sourceDevice: new Int32Array(tokens).map((_, t) => t % 2) })
    } catch (e) {
      fail(plugin, `routing a batch through the engine failed: ${(e as Error).message}`, e)
    }
    const t = result!.telemetry
    if (t.policies.length !== 1 || t.policies[0].policy !== plugin.meta.name) fail(plugin, `telemetry.policies should name '${plugin.meta.name}', got ${JSON.stringify(t.policies.map((p) => p.policy))}`)
    const mine = result!.dropped.filter((d) => d.policy === plugin.meta.name).length
    if (t.policies[0].dropped !== mine) fail(plugin, `telemetry says it dropped ${t.policies[0].dropped} pairs, the result lists ${mine}`)
  }
  void engine!.dispose()
}
