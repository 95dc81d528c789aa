/**
 * The JSON Schema engine of the browser build (replaces `engine.ts` there): schemas are
 * interpreted by `interpreter.ts`, so the bundle carries no Ajv
 * and validation generates no code. An Ajv instance passed to the registry (`ajv` option) is
 * still used, as in Node.
 */
import { ErrorCodes, MoeError } from '../errors.js'
import type * as NodeTwin from './engine.js'
import { interpretSchema } from './interpreter.js'
import { cachedValidator } from './compile-cache.js'
import type { AjvLike, SchemaValidator } from './validator.js'

/** Not in the browser build: it throws MOE_ROUTE_ERR_PACKAGE_MISSING saying how to use Ajv there. */
export const sharedAjv: typeof NodeTwin.sharedAjv = () => {
  throw new MoeError(
    ErrorCodes.PACKAGE_MISSING,
    "the browser build of @moe-route/core has no Ajv (it validates with its own eval-free interpreter); to validate with Ajv there, `npm install ajv` and pass `new Ajv({ allErrors: true, strictNumbers: true })` as the registry's `ajv` option",
  )
}

const INTERPRETER = {}

/** Compiles a schema once per engine (the interpreter unless `ajv` is given); later calls return the cached validator. */
export const compileSchema: typeof NodeTwin.compileSchema = (schema: object, ajv?: AjvLike): SchemaValidator => {
  return cachedValidator(ajv ?? INTERPRETER, schema, () => (ajv ? ajv.compile(schema) : interpretSchema(schema)))
}
