/**
 * An eval-free JSON Schema (draft-07) interpreter that reports what Ajv reports: the error
 * objects of core's shared Ajv (`allErrors`, `strictNumbers`, no formats) with the same
 * `instancePath`, `keyword`, `params` and `message`, so `ajvIssues` makes the same MoeIssues
 * from both engines. The browser build validates with it (no Ajv, no generated code, so it
 * runs under a CSP without `unsafe-eval`); Node keeps Ajv. Why it is written here rather than
 * taken from npm, and where it differs from Ajv, is in core's README ("Schema engines").
 */
import type { ErrorObject } from 'ajv'
import type { SchemaValidator } from './validator.js'

type Obj = Record<string, unknown>
type Schema = Obj | boolean

const isObj = (v: unknown): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v)
const esc = (key: string): string => key.replace(/~/g, '~0').replace(/\//g, '~1')
const unesc = (segment: string): string => segment.replace(/~1/g, '/').replace(/~0/g, '~')

/** Ajv's `type` test with strictNumbers: NaN and ±Infinity are neither number nor integer. */
function hasType(type: string, d: unknown): boolean {
  switch (type) {
    case 'number': return Number.isFinite(d)
    case 'integer': return Number.isInteger(d)
    case 'array': return Array.isArray(d)
    case 'object': return isObj(d)
    case 'null': return d === null
    default: return typeof d === type
  }
}

/** Deep equality of JSON values (Ajv's `fast-deep-equal` for const, enum and uniqueItems). */
function equal(a: unknown, b: unknown): boolean {
  if (a === b) return true
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null || Array.isArray(a) !== Array.isArray(b)) return a !== a && b !== b
  const ka = Object.keys(a)
  return ka.length === Object.keys(b).length && ka.every((k) => Object.hasOwn(b, k) && equal((a as Obj)[k], (b as Obj)[k]))
}

const TYPES = ['array', 'boolean', 'integer', 'null', 'number', 'object', 'string']
const NUMBER: Record<string, [string, (d: number, l: number) => boolean]> = {
  maximum: ['<=', (d, l) => d <= l],
  minimum: ['>=', (d, l) => d >= l],
  exclusiveMaximum: ['<', (d, l) => d < l],
  exclusiveMinimum: ['>', (d, l) => d > l],
}
const COUNT: Record<string, [string, (d: unknown) => number]> = {
  maxLength: ['characters', (d) => [...(d as string)].length], // code points, as Ajv's ucs2length
  minLength: ['characters', (d) => [...(d as string)].length],
  maxItems: ['items', (d) => (d as unknown[]).length],
  minItems: ['items', (d) => (d as unknown[]).length],
  maxProperties: ['properties', (d) => Object.keys(d as Obj).length],
  minProperties: ['properties', (d) => Object.keys(d as Obj).length],
}
const OF_TYPE: Record<string, string> = { maxLength: 'string', minLength: 'string', maxItems: 'array', minItems: 'array', maxProperties: 'object', minProperties: 'object' }
// keywords whose value is one subschema, a list of them, or a map of them
const ONE = ['additionalProperties', 'additionalItems', 'contains', 'propertyNames', 'not', 'if', 'then', 'else']
const LIST = ['allOf', 'anyOf', 'oneOf']
const MAP = ['properties', 'patternProperties', 'definitions']

const error = (instancePath: string, sp: string, keyword: string, params: Obj, message: string): ErrorObject => ({ instancePath, schemaPath: `${sp}/${keyword}`, keyword, params, message })

class Interpreter {
  readonly #root: Schema
  readonly #id: string

  constructor(root: Schema) {
    this.#root = root
    this.#id = isObj(root) && typeof root.$id === 'string' ? root.$id.replace(/#$/, '') : ''
    this.#prepare(root, '#')
  }

  /** The subschema a `$ref` names: `#`, a JSON pointer `#/…`, either after the root's `$id`. */
  resolve(ref: string): Schema | undefined {
    const local = this.#id && ref.startsWith(this.#id) ? ref.slice(this.#id.length) : ref
    if (!local.startsWith('#')) return undefined
    let at: unknown = this.#root
    for (const raw of local.slice(1).split('/').slice(1)) at = isObj(at) || Array.isArray(at) ? (at as Obj)[unesc(decodeURIComponent(raw))] : undefined
    return isObj(at) || typeof at === 'boolean' ? at : undefined
  }

  /** Checks the keywords this engine reads (Ajv checks the draft-07 meta-schema when it compiles). */
  #prepare(s: unknown, at: string): void {
    if (typeof s === 'boolean') return
    const bad = (keyword: string, why: string): never => {
      throw new Error(`schema is invalid: ${at}/${keyword} ${why}`)
    }
    if (!isObj(s)) bad('', 'must be an object or a boolean')
    const o = s as Obj
    if (o.type !== undefined && !([] as unknown[]).concat(o.type).every((t) => TYPES.includes(t as string))) bad('type', 'must be a JSON type or a list of them')
    for (const k of [...Object.keys(NUMBER), 'multipleOf']) if (o[k] !== undefined && typeof o[k] !== 'number') bad(k, 'must be number')
    if (o.multipleOf !== undefined && !((o.multipleOf as number) > 0)) bad('multipleOf', 'must be > 0')
    for (const k of Object.keys(COUNT)) if (o[k] !== undefined && !(Number.isInteger(o[k]) && (o[k] as number) >= 0)) bad(k, 'must be a non-negative integer')
    if (o.required !== undefined && !(Array.isArray(o.required) && o.required.every((r) => typeof r === 'string'))) bad('required', 'must be an array of strings')
    if (o.enum !== undefined && !Array.isArray(o.enum)) bad('enum', 'must be array')
    for (const p of [...(o.pattern === undefined ? [] : [o.pattern]), ...(isObj(o.patternProperties) ? Object.keys(o.patternProperties) : [])]) {
      try {
        new RegExp(p as string, 'u')
      } catch {
        bad('pattern', `${JSON.stringify(p)} is not a regular expression`)
      }
    }
    if (o.$ref !== undefined && (typeof o.$ref !== 'string' || this.resolve(o.$ref) === undefined)) throw new Error(`can't resolve reference ${String(o.$ref)} from id ${this.#id || '#'}`)
    for (const k of ONE) if (o[k] !== undefined) this.#prepare(o[k], `${at}/${k}`)
    for (const k of LIST) {
      if (o[k] === undefined) continue
      if (!Array.isArray(o[k])) bad(k, 'must be array')
      ;(o[k] as unknown[]).forEach((sub, i) => this.#prepare(sub, `${at}/${k}/${i}`))
    }
    if (Array.isArray(o.items)) o.items.forEach((sub, i) => this.#prepare(sub, `${at}/items/${i}`))
    else if (o.items !== undefined) this.#prepare(o.items, `${at}/items`)
    for (const k of [...MAP, 'dependencies']) {
      if (o[k] === undefined) continue
      if (!isObj(o[k])) bad(k, 'must be object')
      for (const [name, sub] of Object.entries(o[k] as Obj)) if (k !== 'dependencies' || !Array.isArray(sub)) this.#prepare(sub, `${at}/${k}/${esc(name)}`)
    }
  }

  /** Appends to `out` the errors of `d` (at `path`) against `s` (at `sp`); valid when none were added. */
  check(s: Schema, d: unknown, path: string, sp: string, out: ErrorObject[]): void {
    const err = (keyword: string, params: Obj, message: string, at = path) => out.push(error(at, sp, keyword, params, message))
    const valid = (sub: Schema, at = sp): boolean => {
      const mine: ErrorObject[] = []
      this.check(sub, d, path, at, mine)
      return mine.length === 0
    }
    if (s === true) return
    if (s === false) {
      out.push({ instancePath: path, schemaPath: sp, keyword: 'false schema', params: {}, message: 'boolean schema is false' })
      return
    }
    if (s.$ref !== undefined) this.check(this.resolve(s.$ref as string)!, d, path, `${sp}/$ref`, out)
    if (s.type !== undefined && !([] as string[]).concat(s.type as string).some((t) => hasType(t, d))) err('type', { type: s.type }, `must be ${s.type}`)
    if (s.const !== undefined && !equal(d, s.const)) err('const', { allowedValue: s.const }, 'must be equal to constant')
    if (s.enum !== undefined && !(s.enum as unknown[]).some((v) => equal(d, v))) err('enum', { allowedValues: s.enum }, 'must be equal to one of the allowed values')
    if (s.not !== undefined && valid(s.not as Schema, `${sp}/not`)) err('not', {}, 'must NOT be valid')
    for (const k of ['anyOf', 'oneOf'] as const) {
      if (s[k] === undefined) continue
      const mine: ErrorObject[] = []
      const passing: number[] = []
      // oneOf stops at its second passing branch (Ajv evaluates no further branch)
      for (const [i, sub] of (s[k] as Schema[]).entries()) {
        const n = mine.length
        this.check(sub, d, path, `${sp}/${k}/${i}`, mine)
        if (mine.length === n && passing.push(i) === 2 && k === 'oneOf') break
      }
      if (k === 'anyOf' && passing.length === 0) out.push(...mine, error(path, sp, k, {}, 'must match a schema in anyOf'))
      if (k === 'oneOf' && passing.length !== 1) out.push(...mine, error(path, sp, k, { passingSchemas: passing.length ? passing : null }, 'must match exactly one schema in oneOf'))
    }
    ;(s.allOf as Schema[] | undefined)?.forEach((sub, i) => this.check(sub, d, path, `${sp}/allOf/${i}`, out))
    if (s.if !== undefined && (s.then !== undefined || s.else !== undefined)) {
      const branch = valid(s.if as Schema, `${sp}/if`) ? 'then' : 'else'
      const n = out.length
      if (s[branch] !== undefined) this.check(s[branch] as Schema, d, path, `${sp}/${branch}`, out)
      if (out.length > n) err('if', { failingKeyword: branch }, `must match "${branch}" schema`)
    }
    for (const [k, [what, size]] of Object.entries(COUNT)) {
      if (s[k] === undefined || !hasType(OF_TYPE[k], d)) continue
      if (k.startsWith('max') ? size(d) > (s[k] as number) : size(d) < (s[k] as number)) err(k, { limit: s[k] }, `must NOT have ${k.startsWith('max') ? 'more' : 'fewer'} than ${s[k]} ${what}`)
    }
    if (Number.isFinite(d)) this.#number(s, d as number, err)
    else if (typeof d === 'string') {
      if (s.pattern !== undefined && !new RegExp(s.pattern as string, 'u').test(d)) err('pattern', { pattern: s.pattern }, `must match pattern "${s.pattern}"`)
    } else if (Array.isArray(d)) this.#array(s, d, path, sp, out, err)
    else if (isObj(d)) this.#object(s, d, path, sp, out, err)
  }

  #number(s: Obj, d: number, err: (k: string, p: Obj, m: string) => void): void {
    for (const [k, [cmp, ok]] of Object.entries(NUMBER)) if (s[k] !== undefined && !ok(d, s[k] as number)) err(k, { comparison: cmp, limit: s[k] }, `must be ${cmp} ${s[k]}`)
    const m = s.multipleOf as number | undefined
    // Ajv's test (no `multipleOfPrecision`): the quotient equals its parseInt
    if (m !== undefined && d / m !== parseInt(String(d / m))) err('multipleOf', { multipleOf: m }, `must be multiple of ${m}`)
  }

  #array(s: Obj, d: unknown[], path: string, sp: string, out: ErrorObject[], err: (k: string, p: Obj, m: string) => void): void {
    if (s.uniqueItems === true) {
      // Ajv's two loops: with scalar item types, an index of the items of those types (others
      // are skipped); otherwise every pair, by deep equality. Either reports the first duplicate.
      const types = isObj(s.items) && s.items.type !== undefined ? ([] as string[]).concat(s.items.type as string) : []
      const dup = (i: number, j: number) => err('uniqueItems', { i, j }, `must NOT have duplicate items (items ## ${j} and ${i} are identical)`)
      if (types.length > 0 && !types.some((t) => t === 'object' || t === 'array')) {
        const seen = new Map<unknown, number>()
        for (let i = d.length; i--; ) {
          if (!types.some((t) => hasType(t, d[i]))) continue
          if (seen.has(d[i])) {
            dup(i, seen.get(d[i])!)
            break
          }
          seen.set(d[i], i)
        }
      } else {
        outer: for (let i = d.length; i--; ) {
          for (let j = i; j--; ) {
            if (equal(d[i], d[j])) {
              dup(i, j)
              break outer
            }
          }
        }
      }
    }
    const items = s.items
    if (Array.isArray(items)) {
      items.forEach((sub, i) => i < d.length && this.check(sub as Schema, d[i], `${path}/${i}`, `${sp}/items/${i}`, out))
      const more = s.additionalItems
      if (more === false && d.length > items.length) err('additionalItems', { limit: items.length }, `must NOT have more than ${items.length} items`)
      else if (more !== undefined && more !== false) for (let i = items.length; i < d.length; i++) this.check(more as Schema, d[i], `${path}/${i}`, `${sp}/additionalItems`, out)
    } else if (items !== undefined) d.forEach((x, i) => this.check(items as Schema, x, `${path}/${i}`, `${sp}/items`, out))
    if (s.contains !== undefined) {
      const mine: ErrorObject[] = []
      const some = d.some((x, i) => {
        const n = mine.length
        this.check(s.contains as Schema, x, `${path}/${i}`, `${sp}/contains`, mine)
        return mine.length === n
      })
      if (!some) out.push(...mine, error(path, sp, 'contains', { minContains: 1 }, 'must contain at least 1 valid item(s)'))
    }
  }

  #object(s: Obj, d: Obj, path: string, sp: string, out: ErrorObject[], err: (k: string, p: Obj, m: string, at?: string) => void): void {
    for (const p of (s.required as string[] | undefined) ?? []) if (d[p] === undefined) err('required', { missingProperty: p }, `must have required property '${p}'`)
    for (const [p, dep] of Object.entries((s.dependencies as Obj | undefined) ?? {})) {
      if (d[p] === undefined) continue
      if (!Array.isArray(dep)) this.check(dep as Schema, d, path, `${sp}/dependencies/${esc(p)}`, out)
      else for (const q of dep as string[]) if (d[q] === undefined) err('dependencies', { property: p, missingProperty: q, depsCount: dep.length, deps: dep.join(', ') }, `must have ${dep.length === 1 ? 'property' : 'properties'} ${dep.join(', ')} when property ${p} is present`)
    }
    const props = (s.properties as Obj | undefined) ?? {}
    const patterns = Object.entries((s.patternProperties as Obj | undefined) ?? {}).map(([p, sub]) => [new RegExp(p, 'u'), sub, p] as const)
    for (const key in d) {
      if (s.propertyNames !== undefined) {
        const mine: ErrorObject[] = []
        this.check(s.propertyNames as Schema, key, path, `${sp}/propertyNames`, mine)
        if (mine.length) {
          out.push(...mine.map((e) => ({ ...e, propertyName: key })))
          err('propertyNames', { propertyName: key }, 'property name must be valid')
        }
      }
      const more = s.additionalProperties
      if (more === undefined || Object.hasOwn(props, key) || patterns.some(([re]) => re.test(key))) continue
      if (more === false) err('additionalProperties', { additionalProperty: key }, 'must NOT have additional properties')
      else this.check(more as Schema, d[key], `${path}/${esc(key)}`, `${sp}/additionalProperties`, out)
    }
    for (const [key, sub] of Object.entries(props)) if (d[key] !== undefined) this.check(sub as Schema, d[key], `${path}/${esc(key)}`, `${sp}/properties/${esc(key)}`, out)
    for (const [re, sub, p] of patterns) for (const key in d) if (re.test(key)) this.check(sub as Schema, d[key], `${path}/${esc(key)}`, `${sp}/patternProperties/${esc(p)}`, out)
  }
}

/**
 * Compiles `schema` for the interpreter: checks it (throws `schema is invalid: …` or
 * `can't resolve reference …`, as Ajv's compile does) and returns a {@link SchemaValidator}
 * whose `errors` are Ajv's. The schema object is read, never modified.
 */
export function interpretSchema(schema: object | boolean): SchemaValidator {
  const engine = new Interpreter(schema as Schema)
  const fn: SchemaValidator = (data: unknown) => {
    const errors: ErrorObject[] = []
    try {
      engine.check(schema as Schema, data, '', '#', errors)
    } catch (cause) {
      // a schema that refers to itself without consuming data (`{ "$ref": "#" }`) recurses forever
      errors.push({ instancePath: '', schemaPath: '#', keyword: '$ref', params: {}, message: `cannot be checked: ${(cause as Error).message}` })
    }
    fn.errors = errors.length ? errors : null
    return errors.length === 0
  }
  return fn
}
