/**
 * Plugin manifests: a package declares its plugins' meta in its package.json under the
 * `moe-route` field, so `validate`, `plugins` and every config check can read a plugin's name,
 * kind, version, core range, options schema and device lowerings without running a line of it.
 * When the module is imported to run, its own meta must equal the manifest
 * ({@link checkAgainstManifest}).
 *
 * ```json
 * "moe-route": {
 *   "core": "^0.1.0",
 *   "plugins": [{ "kind": "policy", "name": "entropy-drop", "device": [], "schema": { … }, "defaultOptions": { … } }]
 * }
 * ```
 */
// ajv's meta-schema of schemas safe for untrusted data (inlined by the build: see tsup.config.ts)
import secureMetaSchema from 'ajv/lib/refs/json-schema-secure.json' with { type: 'json' }
import { ErrorCodes, MoeError } from '../errors.js'
import { definePluginOfKind } from '../plugin/define.js'
import type { JsonSchema, Plugin, PluginKind, PluginMeta } from '../plugin/types.js'
import { sharedAjv } from '../schema/ajv.js'

/** The package.json field holding the manifest. */
export const MANIFEST_FIELD = 'moe-route'

/** Plugin kinds a manifest may declare. */
export const PLUGIN_KINDS: readonly PluginKind[] = ['router', 'policy', 'dispatcher', 'store', 'placement', 'backend']

/** One plugin as a manifest declares it (package name and version come from package.json). */
export interface ManifestPlugin {
  readonly kind: PluginKind
  readonly name: string
  readonly description?: string
  /** Device lowerings its instances carry (`meta.device`); `[]` when none. */
  readonly device?: readonly ('wgsl' | 'grouping')[]
  readonly schema: JsonSchema
  readonly defaultOptions: Record<string, unknown>
}

/** The `moe-route` field of a package.json. */
export interface PluginManifest {
  /** semver range of @moe-route/core every plugin of the package supports (`meta.core`). */
  readonly core: string
  readonly plugins: readonly ManifestPlugin[]
}

/** Limits on a manifest: it is data read from a file nobody checked. */
const MAX_MANIFEST_JSON = 256 * 1024
const MAX_SCHEMA_DEPTH = 32
const FORBIDDEN_SCHEMA_KEYS = new Set(['$id', '$async', '$data', '$dynamicRef', '$recursiveRef'])

const manifestSchema = {
  type: 'object',
  properties: {
    core: { type: 'string', minLength: 1, maxLength: 256 },
    plugins: {
      type: 'array',
      minItems: 1,
      maxItems: 64,
      items: {
        type: 'object',
        properties: {
          kind: { enum: PLUGIN_KINDS },
          name: { type: 'string', minLength: 1, maxLength: 128, pattern: '^[a-z0-9][a-z0-9._-]*$' },
          description: { type: 'string', maxLength: 1024 },
          device: { type: 'array', maxItems: 2, uniqueItems: true, items: { enum: ['wgsl', 'grouping'] } },
          schema: { type: 'object' },
          defaultOptions: { type: 'object' },
        },
        required: ['kind', 'name', 'schema', 'defaultOptions'],
        additionalProperties: false,
      },
    },
  },
  required: ['core', 'plugins'],
  additionalProperties: false,
} as const

let secureMeta: ((schema: unknown) => boolean) | undefined
/** ajv's meta-schema of schemas that are safe to validate untrusted data with (bounded patterns, formats, uniqueItems). */
function isSchemaSecure(schema: unknown): boolean {
  secureMeta ??= sharedAjv().compile(secureMetaSchema) as (schema: unknown) => boolean
  return secureMeta(schema)
}

/**
 * Reads and checks the `moe-route` field of a parsed package.json: its shape, its size, and
 * each options schema (a draft-07 schema, safe per ajv's security meta-schema, no `$id`/`$ref`/
 * `$data`, at most 32 levels deep). Nothing is compiled to code here.
 * @throws MOE_ROUTE_ERR_PLUGIN_MANIFEST_MISSING when the field is absent;
 * MOE_ROUTE_ERR_PLUGIN_MANIFEST_INVALID naming the field otherwise.
 */
export function readManifest(pkg: unknown, file: string): PluginManifest {
  const name = pkg && typeof pkg === 'object' && typeof (pkg as { name?: unknown }).name === 'string' ? (pkg as { name: string }).name : file
  const raw = pkg && typeof pkg === 'object' ? (pkg as Record<string, unknown>)[MANIFEST_FIELD] : undefined
  if (raw === undefined) {
    throw new MoeError(
      ErrorCodes.PLUGIN_MANIFEST_MISSING,
      `${name} declares no moe-route plugins: its package.json (${file}) has no "${MANIFEST_FIELD}" field, so its plugins cannot be checked without running it (see SECURITY.md)`,
      { plugin: name, file },
    )
  }
  const bad = (field: string, why: string): never => {
    throw new MoeError(ErrorCodes.PLUGIN_MANIFEST_INVALID, `${name}: package.json "${MANIFEST_FIELD}"${field}: ${why}`, { plugin: name, file, field: `/${MANIFEST_FIELD}${field}` })
  }
  if (JSON.stringify(raw).length > MAX_MANIFEST_JSON) bad('', `is larger than ${MAX_MANIFEST_JSON} bytes`)
  const validate = sharedAjv().compile(manifestSchema)
  if (!validate(raw)) {
    const e = validate.errors![0]
    bad(e.instancePath, e.message ?? 'is invalid')
  }
  const manifest = raw as PluginManifest
  const seen = new Set<string>()
  manifest.plugins.forEach((p, i) => {
    const key = `${p.kind}:${p.name}`
    if (seen.has(key)) bad(`/plugins/${i}`, `declares ${p.kind} '${p.name}' twice`)
    seen.add(key)
    checkSchemaTree(p.schema, `/plugins/${i}/schema`, bad)
    if (!sharedAjv().validateSchema(p.schema)) bad(`/plugins/${i}/schema`, `is not a JSON Schema: ${sharedAjv().errorsText(sharedAjv().errors)}`)
    if (!isSchemaSecure(p.schema)) bad(`/plugins/${i}/schema`, 'is not safe to validate untrusted options with (ajv security meta-schema: bound every pattern and format with maxLength)')
  })
  return manifest
}

function checkSchemaTree(schema: unknown, path: string, bad: (field: string, why: string) => never): void {
  const visit = (v: unknown, depth: number, at: string) => {
    if (depth > MAX_SCHEMA_DEPTH) bad(at, `is nested deeper than ${MAX_SCHEMA_DEPTH} levels`)
    if (Array.isArray(v)) v.forEach((x, i) => visit(x, depth + 1, `${at}/${i}`))
    else if (v && typeof v === 'object') {
      for (const [k, x] of Object.entries(v)) {
        const keyword = !at.endsWith('/properties')
        if (keyword && FORBIDDEN_SCHEMA_KEYS.has(k)) bad(`${at}/${k}`, `"${k}" is not allowed in a manifest schema (no identifiers, dynamic references or data pointers)`)
        if (keyword && k === '$ref' && !(typeof x === 'string' && x.startsWith('#'))) bad(`${at}/${k}`, 'only local references ("#/…") are allowed in a manifest schema')
        visit(x, depth + 1, `${at}/${k}`)
      }
    }
  }
  visit(schema, 0, path)
}

/**
 * The manifest that declares `plugins` (what a package's `moe-route` field should hold):
 * every plugin's kind, name, description, device lowerings, schema and defaults as JSON.
 * All plugins must share one core range.
 * @example
 * pkg['moe-route'] = manifestOf([capacityDrop])
 */
export function manifestOf(plugins: readonly Plugin[]): PluginManifest {
  if (plugins.length === 0) throw new MoeError(ErrorCodes.PLUGIN_INVALID, 'a manifest needs at least one plugin')
  const core = plugins[0].meta.core
  for (const p of plugins) {
    if (p.meta.core !== core) throw new MoeError(ErrorCodes.PLUGIN_INVALID, `plugins of one package must share meta.core: ${p.meta.name} has ${p.meta.core}, ${plugins[0].meta.name} has ${core}`, { plugin: p.meta.name })
  }
  return {
    core,
    plugins: plugins.map((p) => ({
      kind: p.kind,
      name: p.meta.name,
      ...(p.meta.description !== undefined ? { description: p.meta.description } : {}),
      device: [...(p.meta.device ?? [])],
      schema: asJson(p.meta.schema) as JsonSchema,
      defaultOptions: asJson(p.meta.defaultOptions ?? {}) as Record<string, unknown>,
    })),
  }
}

/** What a loaded module is checked against: the package it came from and its manifest. */
export interface ManifestSource {
  /** npm name of the package (package.json `name`). */
  readonly name: string
  /** package.json `version`. */
  readonly version: string
  readonly manifest: PluginManifest
  /** True for a local file: it may provide only some of the manifest's plugins. */
  readonly partial?: boolean
}

/**
 * The plugins of a module that belong to its package: those the manifest declares (by kind and
 * name) and those claiming the package in `meta.package`. Plugins of other packages a module
 * re-exports are left out (they are never registered from it).
 */
export function ownPlugins<P extends { kind: PluginKind; meta: PluginMeta }>(plugins: readonly P[], source: ManifestSource): P[] {
  const declared = new Set(source.manifest.plugins.map((p) => `${p.kind}:${p.name}`))
  return plugins.filter((p) => declared.has(`${p.kind}:${p.meta.name}`) || p.meta.package === source.name)
}

/**
 * Checks that the plugins a module exports are exactly those its manifest declares, with the
 * same meta (package, version, core, description, device, schema, defaults).
 * @throws MOE_ROUTE_ERR_PLUGIN_MANIFEST_MISMATCH naming the plugin and the field.
 */
export function checkAgainstManifest(metas: readonly { kind: PluginKind; meta: PluginMeta }[], source: ManifestSource): void {
  const fail = (plugin: string, field: string, why: string): never => {
    throw new MoeError(ErrorCodes.PLUGIN_MANIFEST_MISMATCH, `${source.name}: ${why}; the package.json "${MANIFEST_FIELD}" field must declare what the module exports`, {
      plugin,
      field,
    })
  }
  const declared = new Map(source.manifest.plugins.map((p) => [`${p.kind}:${p.name}`, p]))
  const exported = new Set<string>()
  for (const { kind, meta } of metas) {
    const key = `${kind}:${meta.name}`
    exported.add(key)
    const d = declared.get(key)
    if (!d) fail(meta.name, 'plugins', `the module exports ${kind} '${meta.name}', which the manifest does not declare`)
    const same = (field: string, a: unknown, b: unknown) => {
      if (canonicalJson(a) !== canonicalJson(b)) fail(meta.name, field, `${kind} '${meta.name}': meta.${field} is ${short(a)} in the module but ${short(b)} in the manifest`)
    }
    same('package', meta.package, source.name)
    same('version', meta.version, source.version)
    same('core', meta.core, source.manifest.core)
    same('description', meta.description ?? null, d!.description ?? null)
    same('device', [...(meta.device ?? [])], [...(d!.device ?? [])])
    same('schema', meta.schema, d!.schema)
    same('defaultOptions', meta.defaultOptions ?? {}, d!.defaultOptions)
  }
  if (!source.partial) {
    for (const [key, d] of declared) if (!exported.has(key)) fail(d.name, 'plugins', `the manifest declares ${d.kind} '${d.name}', which the module does not export`)
  }
}


/**
 * A plugin known only from its manifest: registering it lets a registry check configs (names,
 * core range, options) while no code of the package has run. Its `create` throws
 * MOE_ROUTE_ERR_PLUGIN_LOAD_FAILED: commands that run a plugin import it first.
 */
export function describedPlugin(entry: ManifestPlugin, source: ManifestSource): Plugin {
  const meta: PluginMeta = {
    name: entry.name,
    package: source.name,
    version: source.version,
    core: source.manifest.core,
    schema: entry.schema,
    defaultOptions: entry.defaultOptions,
    ...(entry.description !== undefined ? { description: entry.description } : {}),
    ...(entry.device && entry.device.length > 0 ? { device: entry.device } : {}),
  }
  return definePluginOfKind(entry.kind, {
    meta,
    create() {
      throw new MoeError(ErrorCodes.PLUGIN_LOAD_FAILED, `${entry.kind} plugin ${entry.name} (${source.name}) was read from its manifest only; import it to run it`, { plugin: entry.name })
    },
  } as never)
}

/** JSON text with object keys sorted (for comparing schemas and defaults). */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) =>
    v && typeof v === 'object' && !Array.isArray(v) ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, (v as Record<string, unknown>)[k]])) : v,
  )
}

function asJson(v: unknown): unknown {
  return v === undefined ? undefined : JSON.parse(JSON.stringify(v))
}

function short(v: unknown): string {
  const s = canonicalJson(v) ?? 'undefined'
  return s.length > 80 ? `${s.slice(0, 77)}...` : s
}
