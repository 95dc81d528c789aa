/**
 * Internal (not exported from the package root): the compile cache of both builds'
 * `compileSchema` (engine.ts, engine.browser.ts).
 */
import type { SchemaValidator } from './validator.js'

const compiled = new WeakMap<object, WeakMap<object, SchemaValidator>>()

/**
 * The validator of `schema` under `engine` (any object naming the engine: an Ajv, or the
 * interpreter's key), compiled by `compile` on first use and cached per engine and schema.
 */
export function cachedValidator(engine: object, schema: object, compile: () => SchemaValidator): SchemaValidator {
  let perEngine = compiled.get(engine)
  if (!perEngine) compiled.set(engine, (perEngine = new WeakMap()))
  let fn = perEngine.get(schema)
  if (!fn) perEngine.set(schema, (fn = compile()))
  return fn
}
