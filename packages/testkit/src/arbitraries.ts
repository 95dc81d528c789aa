/**
 * fast-check generators of routings: random shapes (tokens, experts, k, devices), logits
 * with and without ties, optional source devices and decode batches, routed by core's
 * softmax-top-k exactly as the engine would route them.
 */
import { softmaxTopK, type Routing } from '@moe-route/core'
import fc from 'fast-check'

/** Bounds of generated routings. */
export interface RoutingConstraints {
  /** Tokens per batch, at most (default 48). */
  readonly maxTokens?: number
  /** Tokens per batch, at least (default 0; for cases that must span several workgroups). */
  readonly minTokens?: number
  /** Experts, at least (default 1). */
  readonly minExperts?: number
  /** Experts, at most (default 16). */
  readonly maxExperts?: number
  /** k, at most (default 4, never more than the experts). */
  readonly maxTopK?: number
  /** Devices, at least (default 1; experts are raised to match). For policies that need expert parallelism. */
  readonly minDevices?: number
  /** Devices, at most (default 4, never more than the experts). */
  readonly maxDevices?: number
  /** Generate decode batches sometimes (default true). */
  readonly decode?: boolean
  /** Empty some tokens' trailing slots, as an earlier policy that dropped pairs does (default false). */
  readonly holes?: boolean
}

/** One generated case: a routing plus the device count and seed to run a policy with. */
export interface RoutingCase {
  readonly routing: Routing
  readonly devices: number
  /** Seed of the policy's `random` and of the batch id. */
  readonly seed: number
  readonly batchId: number
}

/** One generated router input: gate logits of a batch, the routing shape, devices and seed. */
export interface RouterInputCase {
  readonly tokens: number
  readonly experts: number
  readonly topK: number
  readonly normalizeTopK: boolean
  /** tokens × experts gate logits (continuous, or small integers with many exact ties). */
  readonly logits: Float32Array
  readonly sourceDevice?: Int32Array
  readonly decode?: true
  readonly devices: number
  /** Seed of the plugin (and of anything a check derives from the case). */
  readonly seed: number
  readonly batchId: number
}

/**
 * An arbitrary {@link RouterInputCase}: what {@link routingCase} routes. Logits are either
 * continuous or small integers (many exact ties, which stress tie-breaking); half the
 * multi-device cases carry `sourceDevice`.
 * @example
 * fc.assert(fc.property(routerInputCase({ maxExperts: 8 }), (c) => c.logits.length === c.tokens * c.experts))
 */
export function routerInputCase(constraints: RoutingConstraints = {}): fc.Arbitrary<RouterInputCase> {
  const maxTokens = constraints.maxTokens ?? 48
  const minDevices = Math.max(1, constraints.minDevices ?? 1)
  const minExperts = Math.max(1, minDevices, constraints.minExperts ?? 1)
  const maxExperts = Math.max(minExperts, constraints.maxExperts ?? 16)
  return fc
    .record({
      tokens: fc.integer({ min: Math.min(Math.max(0, constraints.minTokens ?? 0), maxTokens), max: maxTokens }),
      experts: fc.integer({ min: minExperts, max: maxExperts }),
      seed: fc.integer({ min: 0, max: 0x7fffffff }),
      batchId: fc.nat({ max: 1_000_000 }),
      normalizeTopK: fc.boolean(),
      ties: fc.boolean(),
      decode: constraints.decode === false ? fc.constant(false) : fc.boolean(),
      withSource: fc.boolean(),
    })
    .chain((s) =>
      fc.record({
        s: fc.constant(s),
        topK: fc.integer({ min: 1, max: Math.min(s.experts, constraints.maxTopK ?? 4) }),
        devices: fc.integer({ min: minDevices, max: Math.max(minDevices, Math.min(s.experts, constraints.maxDevices ?? 4)) }),
        logits: fc.array(
          s.ties ? fc.integer({ min: -2, max: 2 }) : fc.double({ min: -8, max: 8, noNaN: true, noDefaultInfinity: true }),
          { minLength: s.tokens * s.experts, maxLength: s.tokens * s.experts },
        ),
      }),
    )
    .chain(({ s, topK, devices, logits }) =>
      fc
        .array(fc.integer({ min: 0, max: devices - 1 }), { minLength: s.tokens, maxLength: s.tokens })
        .map((src): RouterInputCase => {
          const sourceDevice = s.withSource && devices > 1 ? Int32Array.from(src) : undefined
          return {
            tokens: s.tokens,
            experts: s.experts,
            topK,
            normalizeTopK: s.normalizeTopK,
            logits: Float32Array.from(logits),
            ...(sourceDevice ? { sourceDevice } : {}),
            ...(s.decode ? { decode: true as const } : {}),
            devices,
            seed: s.seed,
            batchId: s.batchId,
          }
        }),
    )
}

/**
 * An arbitrary {@link RoutingCase}: a {@link routerInputCase} routed by core's softmax-top-k
 * exactly as the engine would route it. With `holes`, some tokens lose trailing pairs (as an
 * earlier policy that dropped them leaves a routing).
 * @example
 * fc.assert(fc.property(routingCase({ maxExperts: 8 }), ({ routing }) => routing.topK <= 8))
 */
export function routingCase(constraints: RoutingConstraints = {}): fc.Arbitrary<RoutingCase> {
  const cases = routerInputCase(constraints).map((c): RoutingCase => {
    const routing = softmaxTopK(
      { tokens: c.tokens, experts: c.experts, logits: c.logits, ...(c.sourceDevice ? { sourceDevice: c.sourceDevice } : {}), ...(c.decode ? { decode: true } : {}) },
      c.topK,
      c.normalizeTopK,
    )
    return { routing, devices: c.devices, seed: c.seed, batchId: c.batchId }
  })
  if (!constraints.holes) return cases
  return cases.chain((c) =>
    fc.array(fc.nat({ max: c.routing.topK }), { minLength: c.routing.tokens, maxLength: c.routing.tokens }).map((cut): RoutingCase => {
      const { tokens, slots } = c.routing
      const expertIds = c.routing.expertIds.slice()
      const weights = c.routing.weights.slice()
      for (let t = 0; t < tokens; t++) {
        // keep the first slots - cut[t] pairs of token t (non-empty slots stay first)
        for (let j = Math.max(0, slots - cut[t]); j < slots; j++) {
          expertIds[t * slots + j] = -1
          weights[t * slots + j] = 0
        }
      }
      return { ...c, routing: { ...c.routing, expertIds, weights } }
    }),
  )
}

/** A deep copy of a routing (typed arrays copied), to check that a policy left its input alone. */
export function cloneRouting(r: Routing): Routing {
  return {
    ...r,
    expertIds: r.expertIds.slice(),
    weights: r.weights.slice(),
    scores: r.scores.slice(),
    ...(r.sourceDevice ? { sourceDevice: r.sourceDevice.slice() } : {}),
  }
}
