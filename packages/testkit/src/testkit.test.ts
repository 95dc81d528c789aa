import { comparePairsByScore, definePolicy, expertCapacity, pairsOf, routingFromPairs, type DroppedPair, type Pair, type Plugin, type Routing } from '@moe-route/core'
import { randomRouting } from '@moe-route/core/testing'
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { manifestOf } from '@moe-route/core/node'
import { describe, expect, it } from 'vitest'
import {
  ConformanceError,
  checkInvalidOptions,
  checkOptionsSchema,
  checkOutcome,
  checkPolicyDeterminism,
  checkPolicyInEngine,
  checkPolicyInvariants,
  checkPolicyMeta,
  detectRunner,
  invalidOptionsFor,
  policyConformance,
} from './index.js'

interface Opts {
  capacityFactor: number
}
type Variant = 'good' | 'vanish' | 'out-of-range' | 'negative-weight' | 'over-capacity' | 'random' | 'mutate' | 'misnamed' | 'wrong-policy-name' | 'throws'

/** A score-priority capacity drop, correct as 'good' and broken in one way per variant. */
function makePolicy(variant: Variant, metaOverrides: Record<string, unknown> = {}): Plugin<'policy'> {
  return definePolicy<Opts>({
    meta: {
      name: 'fixture-drop',
      package: 'moe-route-policy-fixture-drop',
      version: '1.0.0',
      core: '^0.1.0',
      schema: { type: 'object', properties: { capacityFactor: { type: 'number', exclusiveMinimum: 0 } }, required: ['capacityFactor'], additionalProperties: false },
      defaultOptions: { capacityFactor: 1 },
      ...metaOverrides,
    },
    create(options) {
      const name = variant === 'misnamed' ? 'something-else' : 'fixture-drop'
      return {
        name,
        apply(routing: Routing, ctx) {
          if (variant === 'throws') throw new Error('boom')
          const cap = expertCapacity(options.capacityFactor, routing.tokens, routing.topK, routing.experts)
          const pairs = pairsOf(routing).sort(comparePairsByScore(routing.scores, routing.experts))
          const load = new Array<number>(routing.experts).fill(0)
          const kept: Pair[] = []
          const dropped: DroppedPair[] = []
          for (const p of pairs) {
            const keep = variant === 'random' ? ctx.random() < 0.5 || Math.random() < 0.5 : load[p.expert] < cap
            if (keep) {
              load[p.expert]++
              kept.push(variant === 'negative-weight' ? { ...p, weight: -1 } : p)
            } else if (variant !== 'vanish') dropped.push({ ...p, reason: 'capacity', policy: variant === 'wrong-policy-name' ? 'other' : name })
          }
          if (variant === 'mutate' && routing.weights.length > 0) routing.weights[0] = 0.123
          const out = routingFromPairs(routing, kept)
          if (variant === 'out-of-range' && out.expertIds.length > 0) out.expertIds[0] = routing.experts
          return { routing: out, dropped, capacity: variant === 'over-capacity' ? Math.max(0, cap - 1) : cap }
        },
      }
    },
  })
}

const good = makePolicy('good')
/** The fixture's package.json: name, version and the manifest of what it exports. */
const goodPackage = { name: 'moe-route-policy-fixture-drop', version: '1.0.0', 'moe-route': manifestOf([good]) }
const quick = { runs: 40, seed: 42 }
const conformanceError = (fn: () => unknown, pattern: RegExp) => {
  let error: unknown
  try {
    fn()
  } catch (e) {
    error = e
  }
  expect(error, 'expected a ConformanceError').toBeInstanceOf(Error)
  const message = String((error as Error).message)
  expect(message).toMatch(pattern)
  return error
}

describe('testkit checks', () => {
  it('pass on a correct policy', () => {
    checkPolicyMeta(good, goodPackage)
    checkOptionsSchema(good)
    expect(checkInvalidOptions(good)).toBeGreaterThanOrEqual(2)
    checkPolicyInvariants(good, {}, ['shape', 'conservation', 'capacity'], quick)
    checkPolicyInvariants(good, { capacityFactor: 0.5 }, ['shape', 'conservation', 'capacity'], quick)
    checkPolicyDeterminism(good, {}, quick)
    checkPolicyInEngine(good, {})
  })

  it('reject objects that are not plugins, foreign core ranges and mismatched package.json', () => {
    const e = conformanceError(() => checkPolicyMeta({ meta: { name: 'x' }, create() {} }), /not a moe-route plugin/)
    expect(e).toBeInstanceOf(ConformanceError)
    conformanceError(() => checkPolicyMeta(makePolicy('good', { core: '^9.0.0' })), /fixture-drop: cannot be registered.*supports @moe-route\/core \^9\.0\.0/s)
    conformanceError(() => checkPolicyMeta(good, { name: 'moe-route-policy-other', version: '1.0.0' }), /meta\.package is 'moe-route-policy-fixture-drop' but package\.json says 'moe-route-policy-other'/)
    conformanceError(() => checkPolicyMeta(makePolicy('good', { version: 'one' })), /not a semver version/)
    // the manifest configs read without running the plugin must exist and say what the code says
    conformanceError(() => checkPolicyMeta(good, { name: 'moe-route-policy-fixture-drop', version: '1.0.0' }), /package\.json has no "moe-route" field/)
    const stale = manifestOf([makePolicy('good', { defaultOptions: { capacityFactor: 9 } })])
    conformanceError(() => checkPolicyMeta(good, { ...goodPackage, 'moe-route': stale }), /meta\.defaultOptions is .* in the module but .* in the manifest/)
  })

  it('reject schemas that accept unknown fields or defaults that fail the schema', () => {
    const loose = makePolicy('good', { schema: { type: 'object', properties: { capacityFactor: { type: 'number' } } } })
    conformanceError(() => checkInvalidOptions(loose), /accepts unknown fields/)
    expect(checkInvalidOptions(loose, [], { allowUnknownOptions: true })).toBe(1)
    const untyped = makePolicy('good', { schema: { type: 'object', properties: { capacityFactor: {} }, additionalProperties: false } })
    conformanceError(() => checkInvalidOptions(untyped, [{ capacityFactor: 'x' }]), /accepted invalid options/)
    conformanceError(() => checkOptionsSchema(makePolicy('good', { defaultOptions: { capacityFactor: -1 } })), /defaultOptions fail its own schema/)
  })

  it('derive invalid options from the schema', () => {
    const cases = invalidOptionsFor({ type: 'object', properties: { a: { type: 'number' }, b: { type: 'string', enum: ['x', 'y'] }, c: { type: ['boolean', 'null'] } }, additionalProperties: false })
    expect(cases.map((c) => c.options)).toEqual([{ notAnOption: 1 }, { a: 'not-a-valid-value' }, { b: 12345.5 }, { b: '__not_in_enum__' }, { c: 'not-a-valid-value' }])
  })

  it.each([
    ['vanish', ['conservation'], /pair \(token \d+, expert \d+\) vanished/],
    ['wrong-policy-name', ['conservation'], /names policy 'other', expected 'fixture-drop'/],
    ['out-of-range', ['shape'], /expert id \d+ is outside -1/],
    ['negative-weight', ['shape'], /weight -1 is not finite and ≥ 0/],
    ['over-capacity', ['capacity'], /over the reported capacity/],
    ['misnamed', ['shape'], /instance is named 'something-else'/],
    ['throws', ['shape'], /apply\(\) threw on a valid routing.*boom/s],
  ] as const)('catch a policy that breaks the contract: %s', (variant, kinds, pattern) => {
    conformanceError(() => checkPolicyInvariants(makePolicy(variant), {}, kinds, quick), pattern)
  })

  it('catch nondeterminism and input mutation', () => {
    conformanceError(() => checkPolicyDeterminism(makePolicy('random'), {}, quick), /gave (a )?different outcome/)
    conformanceError(() => checkPolicyDeterminism(makePolicy('mutate'), {}, quick), /modified its input routing/)
  })

  it('report pairs both kept and dropped, duplicates and invented pairs', () => {
    const input = randomRouting(4, 4, 2, 3)
    const pairs = pairsOf(input)
    const kept = routingFromPairs(input, [...pairs, { token: 0, expert: pairs[0].expert, weight: 0.1 }])
    const v = checkOutcome(input, { routing: kept, dropped: [{ ...pairs[1], reason: 'capacity', policy: 'p' }] }, { policy: 'p' })
    expect(v.map((x) => x.message).join('\n')).toMatch(/routed to expert \d+ twice/)
    expect(v.map((x) => x.message).join('\n')).toMatch(/is still in the output routing/)
    const free = [0, 1, 2, 3].find((e) => !pairs.some((p) => p.token === 0 && p.expert === e))!
    const invented = checkOutcome(input, { routing: routingFromPairs(input, [...pairs, { token: 0, expert: free, weight: 0.2 }], 3), dropped: [] })
    expect(invented.map((x) => x.message)).toEqual([`pair (token 0, expert ${free}) appeared: it was not in the input and is neither a reroute target nor in 'added'`])
    const declared = checkOutcome(input, { routing: routingFromPairs(input, [...pairs, { token: 0, expert: free, weight: 0.2 }], 3), dropped: [], added: [{ token: 0, expert: free, weight: 0.2 }] })
    expect(declared).toEqual([])
  })
})

describe('runner detection', () => {
  it('imports vitest when there are no globals and no runner is given', async () => {
    const r = await detectRunner()
    const vitest = await import('vitest')
    expect(r.describe).toBe(vitest.describe)
    expect(r.it).toBe(vitest.it)
  })

  it('uses the runner it is given, synchronously', () => {
    const calls: string[] = []
    const r = detectRunner({ describe: (n, fn) => (calls.push(`d:${n}`), fn()), it: (n) => calls.push(`i:${n}`) })
    expect(r).not.toBeInstanceOf(Promise)
    void policyConformance(good, { ...(r as object), options: [{ capacityFactor: 2 }] })
    expect(calls[0]).toBe('d:moe-route policy conformance: fixture-drop (moe-route-policy-fixture-drop@1.0.0)')
    expect(calls.filter((c) => c.startsWith('i:')).length).toBe(4 + 2 * 6)
  })

  it('runs under node:test from the built package', () => {
    const root = fileURLToPath(new URL('../../..', import.meta.url))
    expect(existsSync(join(root, 'packages/testkit/dist/index.js')), 'run the build first (npm test does)').toBe(true)
    const dir = mkdtempSync(join(tmpdir(), 'testkit-node-test-'))
    try {
      const file = join(dir, 'conformance.test.mjs')
      writeFileSync(
        file,
        `import { definePolicy } from ${JSON.stringify(join(root, 'packages/core/dist/index.js'))}
import { policyConformance } from ${JSON.stringify(join(root, 'packages/testkit/dist/index.js'))}
const keepAll = definePolicy({
  meta: { name: 'keep-all', package: 'keep-all', version: '1.0.0', core: '^0.1.0', schema: { type: 'object', properties: {}, additionalProperties: false }, defaultOptions: {} },
  create: () => ({ name: 'keep-all', apply: (routing) => ({ routing, dropped: [] }) }),
})
await policyConformance(keepAll, { runs: 20 })
`,
      )
      const env: NodeJS.ProcessEnv = { ...process.env, NODE_OPTIONS: '' }
      delete env.VITEST
      const r = spawnSync(process.execPath, ['--test', '--test-reporter=tap', file], { encoding: 'utf8', env, timeout: 60_000 })
      expect(r.stdout).toMatch(/# pass 10/)
      expect(r.stdout).toMatch(/# fail 0/)
      expect(r.status).toBe(0)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})

describe('policyConformance on a fixture policy, through vitest', () => {
  void policyConformance(good, { describe, it, options: [{ capacityFactor: 0.5 }], packageJson: goodPackage, runs: 30 })
})
