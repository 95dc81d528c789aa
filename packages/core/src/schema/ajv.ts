/**
 * One shared Ajv instance and a compile cache keyed by schema object. Embedders may pass
 * their own Ajv (e.g. with extra formats) to the registry instead.
 */
// The named export: the same class under ESM, CJS and every bundler, and types that compile under
// moduleResolution node16/nodenext (a default import of this CJS module does not).
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv'
import type { MoeErrorCode, MoeIssue } from '../errors.js'

type AjvInstance = Ajv

/** The Ajv type accepted by the registry. */
export type AjvLike = Pick<AjvInstance, 'compile'>

let shared: AjvInstance | undefined

/**
 * The shared Ajv instance (allErrors, strict off so plugin schemas may carry docs keywords,
 * strictNumbers on: `1e400` parses to Infinity and NaN is no number, so neither passes a
 * `number` or `integer` field).
 */
export function sharedAjv(): AjvInstance {
  shared ??= new Ajv({ allErrors: true, strict: false, strictNumbers: true, useDefaults: false })
  return shared
}

const cache = new WeakMap<object, WeakMap<object, ValidateFunction>>()

/** Compiles a schema once per Ajv instance; later calls return the cached validator. */
export function compileSchema(schema: object, ajv: AjvLike = sharedAjv()): ValidateFunction {
  let perAjv = cache.get(ajv)
  if (!perAjv) cache.set(ajv, (perAjv = new WeakMap()))
  let fn = perAjv.get(schema)
  if (!fn) perAjv.set(schema, (fn = ajv.compile(schema)))
  return fn
}

/** Turns Ajv errors into issues whose path names the exact field (prefixed by `base`). */
export function ajvIssues(errors: readonly ErrorObject[] | null | undefined, base: string, code: MoeErrorCode, plugin?: string): MoeIssue[] {
  if (!errors) return []
  const issues: MoeIssue[] = []
  const seen = new Set<string>()
  for (const e of errors) {
    let path = base + e.instancePath
    let message = e.message ?? 'is invalid'
    const p = e.params as Record<string, unknown>
    if (e.keyword === 'required') {
      path += `/${p.missingProperty}`
      message = 'is required'
    } else if (e.keyword === 'additionalProperties') {
      path += `/${p.additionalProperty}`
      message = 'is not a known field'
    } else if (e.keyword === 'enum') {
      message = `must be one of ${(p.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`
    } else if (e.keyword === 'if') {
      continue
    }
    const key = `${path}|${message}`
    if (seen.has(key)) continue
    seen.add(key)
    issues.push({ code, path: path || '/', message, ...(plugin ? { plugin } : {}) })
  }
  return issues
}

/** Formats issues as lines `path: message` for error messages. */
export function formatIssues(issues: readonly MoeIssue[]): string {
  return issues.map((i) => `  ${i.path}: ${i.message}${i.plugin ? ` (plugin ${i.plugin})` : ''}`).join('\n')
}
