/**
 * The JSON Schema engine of the Node build: one shared Ajv instance and a compile cache keyed
 * by schema object. Embedders may pass their own Ajv (e.g. with extra formats) to the registry
 * instead. The browser build replaces this file with `engine.browser.ts` (no Ajv there).
 */
// The named export: the same class under ESM, CJS and every bundler, and types that compile under
// moduleResolution node16/nodenext (a default import of this CJS module does not).
import { Ajv } from 'ajv'
import { cachedValidator } from './compile-cache.js'
import type { AjvLike, SchemaValidator } from './validator.js'

let shared: Ajv | undefined

/**
 * The shared Ajv instance (allErrors, strict off so plugin schemas may carry docs keywords,
 * strictNumbers on: `1e400` parses to Infinity and NaN is no number, so neither passes a
 * `number` or `integer` field). Node build only: the browser build has no Ajv and throws
 * MOE_ROUTE_ERR_PACKAGE_MISSING here.
 */
export function sharedAjv(): Ajv {
  shared ??= new Ajv({ allErrors: true, strict: false, strictNumbers: true, useDefaults: false })
  return shared
}

/**
 * Compiles a schema once per Ajv instance (core's shared one unless `ajv` is given); later
 * calls return the cached validator. Throws when the schema is not a valid JSON Schema.
 */
export function compileSchema(schema: object, ajv?: AjvLike): SchemaValidator {
  const engine = ajv ?? sharedAjv()
  return cachedValidator(engine, schema, () => engine.compile(schema))
}
