/**
 * The validator seam: what core needs from a JSON Schema engine. Node builds compile schemas
 * with Ajv (`engine.ts`); the browser build interprets them (`interpreter.ts`)
 * (`engine.browser.ts`, no Ajv and no code generation). Both report Ajv-shaped error objects,
 * so {@link ajvIssues} turns either into the same {@link MoeIssue}s.
 */
import type { Ajv, ErrorObject } from 'ajv'

/** The Ajv type accepted by the registry (anything with Ajv's `compile`). */
export type AjvLike = Pick<Ajv, 'compile'>

/**
 * A compiled schema: returns true when `data` is valid, else false with the failures in
 * `errors` (Ajv's error objects: `instancePath`, `keyword`, `params`, `message`). An Ajv
 * `ValidateFunction` is one.
 */
export interface SchemaValidator {
  (data: unknown): boolean
  /** The failures of the last call (null or absent after a valid one). */
  errors?: ErrorObject[] | null
}
