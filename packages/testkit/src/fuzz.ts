/**
 * Fuzzing of policy stacks: generated routings (core's router on random logits, ties, source
 * devices, decode batches) through random stacks of 1–3 policies with random valid options —
 * every option drawn from the plugin's own JSON Schema, capacity factors log-uniform over
 * [1e-300, max] plus a few exact values — each step checked with {@link checkOutcome}
 * (shape, conservation, capacity, positive weights) and, for the capacity policies, the reported
 * capacity checked against the documented formula. Runs under vitest with a time budget
 * (fuzz.test.ts) and for minutes from `npm run fuzz` (scripts/fuzz.mjs).
 */
import { contiguousPlacement, createRegistry, mixSeed, mulberry32, type JsonSchema, type Plugin, type PluginRegistry, type PolicyOutcome, type Routing, type RoutingPolicy } from '@moe-route/core'
import fc from 'fast-check'
import { routingCase, type RoutingCase, type RoutingConstraints } from './arbitraries.js'
import { checkOutcome } from './invariants.js'

/** Policies whose reported capacity is C = max over scope groups of rounding(γ·k·T_g/E). */
export const CAPACITY_FORMULA_POLICIES: ReadonlySet<string> = new Set(['capacity-drop', 'expanded-drop', 'reroute', 'spare-capacity-reroute', 'device-capacity', 'entropy-drop'])

/**
 * The documented capacity: x = γ·k·T/E in double precision; an x within 1e-9 of a positive
 * integer n counts as n; then `rounding`. With `ceil`, C ≥ 1 whenever γ > 0 and T > 0.
 * Written from the documentation, not from core's code, so the two are checked against each other.
 */
export function documentedCapacity(gamma: number, topK: number, tokens: number, experts: number, rounding: 'ceil' | 'floor' | 'round' = 'ceil'): number {
  const x = (gamma * topK * tokens) / experts
  const n = Math.round(x)
  const v = n >= 1 && Math.abs(x - n) < 1e-9 ? n : x
  if (rounding === 'floor') return Math.floor(v)
  if (rounding === 'round') return Math.round(v)
  return gamma > 0 && topK > 0 && tokens > 0 ? Math.max(1, Math.ceil(v)) : Math.ceil(v)
}

/** One generated case: a routing, a stack of policies and their options. */
export interface StackCase {
  readonly routing: RoutingCase
  readonly stack: readonly { readonly plugin: string; readonly options: Record<string, unknown> }[]
}

/** A broken invariant, with the case that broke it (replay it with `seed`). */
export interface FuzzViolation {
  readonly policy: string
  readonly kind: string
  readonly message: string
  readonly case: string
}

/** Options of {@link stackCase} and {@link fuzzStacks}. */
export interface FuzzOptions {
  /** Policy plugins to stack. */
  readonly plugins: readonly Plugin<'policy'>[]
  /** Routing bounds (default up to 64 tokens, 64 experts, k ≤ 8, 8 devices). */
  readonly routings?: RoutingConstraints
  /** Longest stack (default 3). */
  readonly maxStack?: number
}

const DEFAULT_ROUTINGS: RoutingConstraints = { maxTokens: 64, maxExperts: 64, maxTopK: 8, maxDevices: 8 }

/** An arbitrary option value for one schema property (undefined: leave the default). */
function valueArb(s: Record<string, unknown>): fc.Arbitrary<unknown> | undefined {
  if (Array.isArray(s.enum)) return fc.constantFrom(...(s.enum as unknown[]))
  const types = Array.isArray(s.type) ? (s.type as string[]) : typeof s.type === 'string' ? [s.type] : []
  const arbs: fc.Arbitrary<unknown>[] = []
  for (const t of types) {
    if (t === 'boolean') arbs.push(fc.boolean())
    else if (t === 'null') arbs.push(fc.constant(null))
    else if (t === 'integer') {
      const min = typeof s.minimum === 'number' ? s.minimum : typeof s.exclusiveMinimum === 'number' ? s.exclusiveMinimum + 1 : 0
      const max = Math.min(typeof s.maximum === 'number' ? s.maximum : min + 64, min + 64)
      arbs.push(fc.integer({ min, max }))
    } else if (t === 'number') {
      const positive = s.exclusiveMinimum === 0 || (typeof s.minimum === 'number' && s.minimum > 0)
      const max = typeof s.maximum === 'number' ? s.maximum : positive ? 1e6 : 16
      if (positive) {
        // every γ > 0: log-uniform from 1e-300 (and the smallest doubles) to the maximum, plus exact values
        const top = Math.log10(max)
        arbs.push(
          fc.oneof(
            fc.double({ min: -300, max: top, noNaN: true }).map((e) => Math.min(max, 10 ** e)),
            fc.constantFrom(Number.MIN_VALUE, 1e-300, 0.25, 0.5, 1, 1.1, 1.25, 1.5, 2, 4, max),
          ),
        )
      } else if (typeof s.minimum === 'number') arbs.push(fc.double({ min: s.minimum, max, noNaN: true }))
    }
  }
  return arbs.length === 0 ? undefined : arbs.length === 1 ? arbs[0] : fc.oneof(...arbs)
}

/** Options drawn from a plugin's schema: any subset of its simple properties. */
export function optionsArb(schema: JsonSchema): fc.Arbitrary<Record<string, unknown>> {
  const props = (schema.properties ?? {}) as Record<string, Record<string, unknown>>
  const model: Record<string, fc.Arbitrary<unknown>> = {}
  for (const [k, s] of Object.entries(props)) {
    const a = valueArb(s ?? {})
    if (a) model[k] = a
  }
  return fc.record(model, { requiredKeys: [] }) as fc.Arbitrary<Record<string, unknown>>
}

/** An arbitrary {@link StackCase}. */
export function stackCase(o: FuzzOptions): fc.Arbitrary<StackCase> {
  const entries = o.plugins.map((p) => optionsArb(p.meta.schema).map((options) => ({ plugin: p.meta.name, options })))
  return fc.record({
    routing: routingCase({ ...DEFAULT_ROUTINGS, ...o.routings }),
    stack: fc.array(fc.oneof(...entries), { minLength: 1, maxLength: o.maxStack ?? 3 }),
  })
}

/**
 * Runs one case: the router's routing, then each policy of the stack in order (as the engine
 * runs them), checking every step. Options a policy refuses (a combination its schema rules
 * out) leave that step out. Returns the violations and how many routings were checked. Pass
 * `registry` (holding `plugins`) to reuse one across cases.
 */
export function runStackCase(
  c: StackCase,
  plugins: ReadonlyMap<string, Plugin<'policy'>>,
  registry: PluginRegistry = createRegistry([...plugins.values()]),
): { violations: FuzzViolation[]; routings: number } {
  const { routing: rc } = c
  const violations: FuzzViolation[] = []
  const describe = () => `${rc.routing.tokens} tokens, E=${rc.routing.experts}, k=${rc.routing.topK}, devices=${rc.devices}, seed ${rc.seed}, batch ${rc.batchId}, stack ${JSON.stringify(c.stack)}`
  const push = (policy: string, kind: string, message: string) => violations.push({ policy, kind, message, case: describe() })
  // the router's own output: kept pairs weigh > 0 too
  for (let i = 0; i < rc.routing.expertIds.length; i++) {
    if (rc.routing.expertIds[i] >= 0 && !(rc.routing.weights[i] > 0)) push('softmax-top-k', 'weight', `slot ${i} keeps expert ${rc.routing.expertIds[i]} with weight ${rc.routing.weights[i]}`)
  }
  const placement = contiguousPlacement(rc.routing.experts, rc.devices)
  const model = { experts: rc.routing.experts, topK: rc.routing.topK, hidden: 8, intermediate: 16, normalizeTopK: rc.routing.normalizeTopK }
  let routing: Routing = rc.routing
  let routings = 1
  c.stack.forEach((step, i) => {
    let policy: RoutingPolicy
    try {
      policy = registry.create('policy', step.plugin, step.options, { model, devices: rc.devices, seed: rc.seed, placement })
    } catch {
      return // options outside the schema's cross-field rules
    }
    const randomSeed = mixSeed(rc.seed, rc.batchId, i)
    let outcome: PolicyOutcome
    try {
      outcome = policy.apply(routing, { placement, batchId: rc.batchId, random: mulberry32(randomSeed), randomSeed })
    } catch (e) {
      // a documented refusal (a coded error) is a result; anything else is a crash
      if ((e as { code?: string })?.code?.startsWith('MOE_ROUTE_ERR_')) return
      push(step.plugin, 'crash', `apply() threw ${(e as Error)?.stack ?? String(e)}`)
      return
    }
    routings++
    const o = { ...(plugins.get(step.plugin)!.meta.defaultOptions as Record<string, unknown>), ...step.options }
    const perSource = o.scope === 'per-source-device'
    // one capacity per source device caps each device's pairs, not the expert's total: checked per group below
    const globalCap = step.plugin !== 'device-capacity' && !perSource
    for (const v of checkOutcome(routing, outcome, { policy: step.plugin, capacity: globalCap })) push(step.plugin, v.kind, v.message)
    if (CAPACITY_FORMULA_POLICIES.has(step.plugin) && !outcome.skipped && typeof outcome.capacity === 'number') {
      const gamma = o.capacityFactor as number
      const rounding = (o.rounding as 'ceil' | 'floor' | 'round' | undefined) ?? 'ceil'
      const groups = perSource ? tokensPerSource(routing) : new Map([[-1, routing.tokens]])
      const capOf = (t: number) => documentedCapacity(gamma, routing.topK, t, routing.experts, rounding)
      const expected = Math.max(0, ...[...groups.values()].map(capOf))
      if (outcome.capacity !== expected) push(step.plugin, 'capacity-formula', `reported capacity ${outcome.capacity}, the documented formula gives ${expected} (γ=${gamma}, ${rounding}, groups of ${[...groups.values()].join('/')} tokens)`)
      if (perSource && step.plugin !== 'device-capacity') {
        const r = outcome.routing
        const load = new Map<string, number>()
        for (let t = 0; t < r.tokens; t++) {
          for (let j = 0; j < r.slots; j++) {
            const e = r.expertIds[t * r.slots + j]
            if (e < 0) continue
            const k = `${r.sourceDevice ? r.sourceDevice[t] : 0}:${e}`
            load.set(k, (load.get(k) ?? 0) + 1)
          }
        }
        for (const [k, n] of load) {
          const [d, e] = k.split(':').map(Number)
          const cap = capOf(groups.get(r.sourceDevice ? d : -1) ?? groups.get(-1) ?? 0)
          if (n > cap) push(step.plugin, 'capacity', `source device ${d} sends ${n} pairs to expert ${e}, over its capacity ${cap}`)
        }
      }
    }
    routing = outcome.routing
  })
  return { violations, routings }
}

/** Tokens per source device (key -1: the whole batch, when the routing has no source devices). */
function tokensPerSource(r: Routing): Map<number, number> {
  if (!r.sourceDevice) return new Map([[-1, r.tokens]])
  const n = new Map<number, number>()
  for (const d of r.sourceDevice) n.set(d, (n.get(d) ?? 0) + 1)
  return n.size === 0 ? new Map([[-1, 0]]) : n
}

/** What {@link fuzzStacks} found. */
export interface FuzzReport {
  /** Generated batches, each routed by the router and its whole stack. */
  readonly cases: number
  /** Routings checked: the router's plus every policy step's. */
  readonly routings: number
  readonly elapsedMs: number
  readonly routingsPerSecond: number
  readonly violations: readonly FuzzViolation[]
  readonly seed: number
}

/**
 * Generates and checks cases until `timeLimitMs` has passed (or `maxCases` are done), in chunks
 * sampled with consecutive seeds from `seed`. Keeps at most 20 violations.
 * @example
 * const r = fuzzStacks({ plugins: [capacityDrop, reroute], timeLimitMs: 60_000 })
 * console.log(r.routingsPerSecond, r.violations.length)
 */
export function fuzzStacks(o: FuzzOptions & { readonly timeLimitMs: number; readonly maxCases?: number; readonly seed?: number; readonly onProgress?: (r: FuzzReport) => void }): FuzzReport {
  const plugins = new Map(o.plugins.map((p) => [p.meta.name, p]))
  const registry = createRegistry(o.plugins)
  const arb = stackCase(o)
  const seed = o.seed ?? Date.now() % 0x7fffffff
  const started = performance.now()
  let cases = 0
  let routings = 0
  const violations: FuzzViolation[] = []
  const report = (): FuzzReport => {
    const elapsedMs = performance.now() - started
    return { cases, routings, elapsedMs, routingsPerSecond: routings / Math.max(elapsedMs / 1000, 1e-9), violations, seed }
  }
  let lastProgress = started
  for (let chunk = 0; performance.now() - started < o.timeLimitMs && cases < (o.maxCases ?? Infinity); chunk++) {
    for (const c of fc.sample(arb, { numRuns: 200, seed: (seed + chunk) | 0 })) {
      const r = runStackCase(c, plugins, registry)
      cases++
      routings += r.routings
      for (const v of r.violations) if (violations.length < 20) violations.push(v)
    }
    if (o.onProgress && performance.now() - lastProgress > 10_000) {
      lastProgress = performance.now()
      o.onProgress(report())
    }
  }
  return report()
}
