/**
 * The browser build's interpreter against the Node build's Ajv: for every keyword core and
 * first-party plugins use (and the rest of draft-07), the same verdict, the same Ajv error
 * objects and the same MoeIssues; plus a seeded differential run over mutated configs.
 */
import { describe, expect, it } from 'vitest'
import { configSchema } from '../config/config.schema.js'
import { ErrorCodes, type MoeIssue } from '../errors.js'
import { mulberry32 } from '../util/rng.js'
import { compileSchema as ajvCompile } from './engine.js'
import { compileSchema as browserCompile, sharedAjv as browserSharedAjv } from './engine.browser.js'
import { interpretSchema } from './interpreter.js'
import { ajvIssues } from './issues.js'

const sortIssues = (issues: MoeIssue[]) => [...issues].sort((a, b) => `${a.path}\0${a.message}`.localeCompare(`${b.path}\0${b.message}`))
const errorKeys = (errors: { instancePath: string; keyword: string; message?: string; params: object }[] | null | undefined) =>
  (errors ?? []).map((e) => `${e.instancePath} ${e.keyword} ${e.message} ${JSON.stringify(e.params)}`).sort()

/** Runs data through both engines; returns both sides for one expect. */
function both(schema: object, data: unknown) {
  const a = ajvCompile(schema)
  const b = interpretSchema(schema)
  const va = a(data)
  const vb = b(data)
  return {
    ajv: { valid: va, errors: errorKeys(a.errors), issues: sortIssues(ajvIssues(a.errors, '/x', ErrorCodes.PLUGIN_OPTIONS_INVALID, 'p')) },
    interpreter: { valid: vb, errors: errorKeys(b.errors), issues: sortIssues(ajvIssues(b.errors, '/x', ErrorCodes.PLUGIN_OPTIONS_INVALID, 'p')) },
  }
}

const expectSame = (schema: object, data: unknown) => {
  const r = both(schema, data)
  expect(r.interpreter, JSON.stringify(data, (_, v) => (typeof v === 'bigint' || (typeof v === 'number' && !Number.isFinite(v)) ? String(v) : v === undefined ? '<undefined>' : v))).toEqual(r.ajv)
  return r.ajv
}

// schema → [data...]: every case must give the same verdict, errors and issues on both engines
const TABLE: [string, object, unknown[]][] = [
  ['number, strictNumbers', { type: 'number', minimum: 0, maximum: 10 }, [5, -1, 11, NaN, Infinity, -Infinity, '5', null, true]],
  ['integer, strictNumbers', { type: 'integer', exclusiveMinimum: 0, exclusiveMaximum: 4 }, [1, 0, 4, 1.5, NaN, Infinity, JSON.parse('1e400'), -Infinity]],
  ['type list', { type: ['number', 'null'], minimum: 1 }, [null, 2, 0, NaN, 'a', Infinity]],
  ['multipleOf', { type: 'number', multipleOf: 0.25 }, [1, 1.25, 1.3, 0, -0.5]],
  ['strings', { type: 'string', minLength: 2, maxLength: 3, pattern: '^[a-z]+$' }, ['ab', 'a', 'abcd', 'AB', '😀😀', 'é', 3]],
  ['enum and const', { properties: { e: { enum: ['a', 1, null, { k: [1] }] }, c: { const: { a: [1, 2] } } } }, [{ e: 'a' }, { e: 'b' }, { e: { k: [1] } }, { e: { k: [2] } }, { c: { a: [1, 2] } }, { c: { a: [2, 1] } }]],
  [
    'objects',
    { type: 'object', properties: { a: { type: 'string' }, 'b/c~d': { type: 'integer' } }, required: ['a', 'z'], additionalProperties: false, minProperties: 1, maxProperties: 3 },
    [{ a: 'x', z: 1 }, {}, { a: 1, 'b/c~d': 1.5, z: 0 }, { a: 'x', z: 1, extra: 1, 'we/ird~key': 2, '': 3 }, { a: undefined, z: 1 }, { a: 'x', z: 1, q: undefined }, [], 'x'],
  ],
  ['additionalProperties schema', { type: 'object', properties: { a: {} }, patternProperties: { '^n_': { type: 'number' } }, additionalProperties: { type: 'boolean' } }, [{ a: 1, n_1: 2, b: true }, { n_x: 'no', c: 3 }]],
  ['dependencies', { dependencies: { a: ['b', 'c'], d: { required: ['e'] } } }, [{ a: 1, b: 1, c: 1 }, { a: 1 }, { d: 1 }, { d: 1, e: 1 }]],
  ['propertyNames', { propertyNames: { maxLength: 2, pattern: '^[a-z]+$' } }, [{ ab: 1 }, { abc: 1, B: 2 }]],
  [
    'arrays',
    { type: 'array', items: { type: 'integer', minimum: 0 }, minItems: 1, maxItems: 3, uniqueItems: true },
    [[1, 2], [], [1, 2, 3, 4], [1, -1, 1.5], [1, 1], [{ a: 1 }, { a: 1 }], [1, undefined], [NaN]],
  ],
  ['tuples', { items: [{ type: 'string' }, { type: 'number' }], additionalItems: false }, [['a', 1], ['a', 'b'], ['a', 1, 2], [1]]],
  ['tuple with additionalItems schema', { items: [{ type: 'string' }], additionalItems: { type: 'number' } }, [['a', 1, 2], ['a', 'b']]],
  ['contains', { type: 'array', contains: { const: 3 } }, [[1, 3], [1, 2], []]],
  ['uniqueItems with scalar item types', { uniqueItems: true, items: { type: ['integer', 'string'] } }, [[1, '1', 'a', 'a'], [{ a: 1 }, { a: 1 }], [1, 2, 1]]],
  ['uniqueItems by deep equality', { uniqueItems: true }, [[1, 1, 2, 2], [{ a: [1] }, { a: [1] }], [[1], [2]]]],
  ['anyOf', { anyOf: [{ type: 'string' }, { type: 'number', minimum: 5 }] }, ['s', 6, 4, null]],
  ['oneOf', { oneOf: [{ type: 'number' }, { type: 'integer' }, { type: 'string' }] }, [1.5, 2, 's', null]],
  ['oneOf stops at the second passing branch', { oneOf: [{ type: 'number' }, { type: 'string' }, { type: 'integer' }, { type: 'boolean' }] }, [2, 2.5, true]],
  ['allOf and not', { allOf: [{ type: 'number' }, { not: { const: 3 } }], not: { maximum: 0 } }, [1, 3, -1, 'x']],
  ['if/then/else', { if: { properties: { k: { const: 'a' } } }, then: { required: ['a'] }, else: { required: ['b'] } }, [{ k: 'a', a: 1 }, { k: 'a' }, { k: 'b' }, { b: 1 }]],
  ['boolean schemas', { properties: { no: false, yes: true } }, [{ yes: 1 }, { no: 1 }]],
  [
    '$ref and definitions',
    { $id: 'https://example.com/s.json', definitions: { pos: { type: 'integer', minimum: 1 }, list: { type: 'array', items: { $ref: '#/definitions/pos' } } }, properties: { a: { $ref: '#/definitions/pos' }, b: { $ref: 'https://example.com/s.json#/definitions/list' }, c: { $ref: '#/definitions/pos', maximum: 3 } } },
    [{ a: 1, b: [1, 2], c: 2 }, { a: 0, b: [1, 0, 'x'], c: 4 }],
  ],
  ['recursive $ref', { type: 'object', properties: { child: { $ref: '#' }, v: { type: 'number' } }, additionalProperties: false }, [{ child: { child: { v: 1 } } }, { child: { child: { v: 'x', w: 1 } } }]],
  ['formats are not checked (as Ajv without ajv-formats)', { type: 'string', format: 'email' }, ['not an email']],
  ['non-JSON data', { type: 'object', properties: { f: { type: 'number' }, g: {} } }, [{ f: () => 1 }, { g: () => 1 }, { f: 1n }, new Map()]],
]

describe('interpreter (browser build) vs Ajv (Node build)', () => {
  for (const [name, schema, cases] of TABLE) {
    it(name, () => {
      for (const data of cases) expectSame(schema, data)
    })
  }

  it('names the exact field, with the same messages, for core config mistakes', () => {
    const r = expectSame(configSchema, { model: { experts: 8, topK: 'two', hidden: NaN, bogus: 1 }, devices: Infinity, policies: [{ use: '', options: 3 }], 'x/y': 1 })
    expect(r.valid).toBe(false)
    expect(r.issues.map((i) => `${i.path}: ${i.message}`)).toEqual([
      '/x/devices: must be integer',
      '/x/model/bogus: is not a known field',
      '/x/model/hidden: must be integer',
      '/x/model/intermediate: is required',
      '/x/model/topK: must be integer',
      '/x/policies/0/options: must be object',
      '/x/policies/0/use: must NOT have fewer than 1 characters',
      '/x/x/y: is not a known field',
    ])
  })

  it('agrees with Ajv on 3000 seeded mutations of a config', () => {
    const random = mulberry32(17)
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(random() * xs.length)]
    const VALUES = [0, -1, 1, 2.5, 1e9, NaN, Infinity, -Infinity, '', 'x', 'capacity-drop', true, null, [], [1], {}, { use: 'a' }, { use: 'a', options: {} }, undefined]
    const PATHS = [['model'], ['model', 'experts'], ['model', 'topK'], ['model', 'hidden'], ['model', 'normalizeTopK'], ['model', 'extra'], ['router'], ['router', 'use'], ['policies'], ['policies', 0], ['policies', 0, 'use'], ['policies', 0, 'fallback'], ['policies', 0, 'options'], ['devices'], ['seed'], ['weights'], ['weights', 'std'], ['weights', 'layout'], ['stream', 'capacity'], ['activationBytes'], ['plugins'], ['plugins', 0], ['security', 'pluginTimeoutMs'], ['workload', 'source'], ['unknown']]
    for (let n = 0; n < 3000; n++) {
      const config: Record<string, unknown> = {
        model: { experts: 8, topK: 2, hidden: 64, intermediate: 128 },
        policies: [{ use: 'capacity-drop', options: { capacityFactor: 1 } }],
        stream: { capacity: 4 },
        plugins: ['p'],
        weights: { std: 0.02 },
        workload: { source: 'w' },
        security: {},
      }
      for (let m = 1 + Math.floor(random() * 3); m > 0; m--) {
        const path = pick(PATHS)
        let at = config as Record<string | number, unknown>
        for (const key of path.slice(0, -1)) at = (typeof at[key] === 'object' && at[key] !== null ? at[key] : (at[key] = {})) as Record<string | number, unknown>
        at[path[path.length - 1]] = structuredClone(pick(VALUES))
      }
      expectSame(configSchema, config)
    }
  })

  it('fails to compile what Ajv fails to compile', () => {
    for (const bad of [{ type: 'float' }, { minimum: '1' }, { required: 'a' }, { pattern: '(' }, { $ref: '#/definitions/missing' }, { properties: { a: { $ref: 'other.json' } } }, { maxLength: -1 }]) {
      expect(() => ajvCompile(bad), JSON.stringify(bad)).toThrow()
      expect(() => interpretSchema(bad), JSON.stringify(bad)).toThrow(/schema is invalid|can't resolve reference/)
    }
  })

  it('reads the schema without changing it (a frozen schema works)', () => {
    const schema = Object.freeze({ type: 'object', properties: Object.freeze({ n: Object.freeze({ type: 'number' }) }) })
    const before = JSON.stringify(schema)
    expect(interpretSchema(schema)({ n: NaN })).toBe(false)
    expect(JSON.stringify(schema)).toBe(before)
  })

  it('reports a schema that recurses without consuming data instead of throwing', () => {
    const validate = interpretSchema({ $ref: '#' })
    expect(validate({})).toBe(false)
    expect(validate.errors?.[0].message).toMatch(/^cannot be checked/)
  })
})

describe('the browser engine seam', () => {
  it('uses the interpreter by default, an Ajv instance when one is passed, and caches per schema', () => {
    const schema = { type: 'integer' }
    const v = browserCompile(schema)
    expect(browserCompile(schema)).toBe(v)
    expect(v(1.5)).toBe(false)
    const calls: object[] = []
    const ajv = { compile: (s: object) => (calls.push(s), ajvCompile(s)) } as unknown as Parameters<typeof browserCompile>[1]
    const viaAjv = browserCompile(schema, ajv)
    expect(viaAjv).not.toBe(v)
    expect(viaAjv(Infinity)).toBe(false)
    expect(calls).toEqual([schema])
  })

  it('has no shared Ajv, and says how to bring one', () => {
    expect(() => browserSharedAjv()).toThrow(expect.objectContaining({ code: ErrorCodes.PACKAGE_MISSING, message: expect.stringMatching(/npm install ajv/) }))
  })
})
