/**
 * The contract of a routing policy's outcome, as plain functions over (input, outcome)
 * that return violations (empty = conforms). Usable without any test runner.
 */
import { pairsOf, type PolicyOutcome, type Routing } from '@moe-route/core'

/** Which group of rules a violation breaks. */
export type InvariantKind = 'shape' | 'conservation' | 'capacity' | 'weight'

/** One broken rule, with a message that names the token and expert involved. */
export interface Violation {
  readonly kind: InvariantKind
  readonly message: string
}

/** Options of {@link checkOutcome}. */
export interface CheckOutcomeOptions {
  /** Name the policy must put in `dropped[].policy` and `rerouted[].policy` (its `meta.name`). */
  readonly policy?: string
  /** Check the capacity the outcome reports (default true). */
  readonly capacity?: boolean
  /** Check that every kept pair has a positive weight (default true). */
  readonly positiveWeights?: boolean
}

const key = (t: number, e: number) => `${t}:${e}`

/**
 * Checks one outcome against the routing it was computed from:
 * - **shape**: same tokens and experts; `expertIds`/`weights` of length tokens × slots; ids
 *   in -1 … E−1; weights finite and ≥ 0, and 0 in empty slots; no (token, expert) twice.
 * - **conservation**: every input pair is kept, moved (`rerouted[].from`) or reported in
 *   `dropped` with a reason; every output pair not in the input is a reroute target or in
 *   `added`; nothing is reported twice or both kept and dropped; entries name the policy.
 * - **capacity**: when `outcome.capacity` is a number (and the batch was not skipped), no
 *   expert has more pairs than that in the output.
 * - **weight**: every kept pair has a weight > 0 (a pair that adds nothing to the output must
 *   not take capacity or compute; drop it instead).
 */
export function checkOutcome(input: Routing, outcome: PolicyOutcome, options: CheckOutcomeOptions = {}): Violation[] {
  const out: Violation[] = []
  const bad = (kind: InvariantKind, message: string) => out.push({ kind, message })
  if (!outcome || typeof outcome !== 'object' || !outcome.routing) {
    bad('shape', 'apply() returned no outcome with a routing')
    return out
  }
  const r = outcome.routing
  if (!Array.isArray(outcome.dropped)) bad('conservation', 'outcome.dropped must be an array (empty when nothing was dropped)')
  if (r.tokens !== input.tokens) bad('shape', `routing.tokens is ${r.tokens}, the input has ${input.tokens}`)
  if (r.experts !== input.experts) bad('shape', `routing.experts is ${r.experts}, the input has ${input.experts}`)
  if (!Number.isInteger(r.slots) || r.slots < 0) bad('shape', `routing.slots must be a non-negative integer, got ${r.slots}`)
  if (!(r.expertIds instanceof Int32Array)) bad('shape', 'routing.expertIds must be an Int32Array')
  if (!(r.weights instanceof Float32Array)) bad('shape', 'routing.weights must be a Float32Array')
  if (r.expertIds?.length !== r.tokens * r.slots) bad('shape', `routing.expertIds has ${r.expertIds?.length} entries, expected tokens × slots = ${r.tokens * r.slots}`)
  if (r.weights?.length !== r.tokens * r.slots) bad('shape', `routing.weights has ${r.weights?.length} entries, expected tokens × slots = ${r.tokens * r.slots}`)
  if (r.scores?.length !== input.tokens * input.experts) bad('shape', `routing.scores has ${r.scores?.length} entries, expected tokens × experts = ${input.tokens * input.experts}`)
  if (input.sourceDevice && r.sourceDevice?.length !== input.tokens) bad('shape', 'routing.sourceDevice was lost or resized')
  if (out.length > 0) return out

  const outputKeys = new Set<string>()
  for (let t = 0; t < r.tokens; t++) {
    for (let j = 0; j < r.slots; j++) {
      const e = r.expertIds[t * r.slots + j]
      const w = r.weights[t * r.slots + j]
      if (!Number.isInteger(e) || e < -1 || e >= r.experts) bad('shape', `token ${t} slot ${j}: expert id ${e} is outside -1 … ${r.experts - 1}`)
      if (!Number.isFinite(w) || w < 0) bad('shape', `token ${t} slot ${j}: weight ${w} is not finite and ≥ 0`)
      if (e === -1 && w !== 0) bad('shape', `token ${t} slot ${j}: empty slot has weight ${w}, expected 0`)
      if (e >= 0 && options.positiveWeights !== false && !(w > 0)) bad('weight', `token ${t} slot ${j}: kept pair (expert ${e}) has weight ${w}; kept pairs must weigh > 0`)
      if (e >= 0) {
        if (outputKeys.has(key(t, e))) bad('shape', `token ${t} is routed to expert ${e} twice`)
        outputKeys.add(key(t, e))
      }
    }
  }

  const inputKeys = new Set(pairsOf(input).map((p) => key(p.token, p.expert)))
  const dropped = new Set<string>()
  for (const d of outcome.dropped ?? []) {
    const k = key(d.token, d.expert)
    const at = `dropped pair (token ${d.token}, expert ${d.expert})`
    if (!inputKeys.has(k)) bad('conservation', `${at} is not a pair of the input`)
    if (outputKeys.has(k)) bad('conservation', `${at} is still in the output routing`)
    if (dropped.has(k)) bad('conservation', `${at} is reported twice`)
    if (typeof d.reason !== 'string' || d.reason.length === 0) bad('conservation', `${at} has no reason`)
    if (options.policy !== undefined && d.policy !== options.policy) bad('conservation', `${at} names policy '${d.policy}', expected '${options.policy}'`)
    if (!Number.isFinite(d.weight)) bad('conservation', `${at} has weight ${d.weight}`)
    dropped.add(k)
  }
  const movedFrom = new Set<string>()
  const movedTo = new Set<string>()
  for (const m of outcome.rerouted ?? []) {
    const at = `rerouted pair (token ${m.token}, expert ${m.from} → ${m.to})`
    if (!inputKeys.has(key(m.token, m.from))) bad('conservation', `${at}: the source pair is not in the input`)
    if (!outputKeys.has(key(m.token, m.to))) bad('conservation', `${at}: the target pair is not in the output`)
    if (m.from === m.to) bad('conservation', `${at} moves a pair onto itself`)
    if (dropped.has(key(m.token, m.from))) bad('conservation', `${at} is also reported dropped`)
    if (movedFrom.has(key(m.token, m.from))) bad('conservation', `${at} is reported twice`)
    if (options.policy !== undefined && m.policy !== options.policy) bad('conservation', `${at} names policy '${m.policy}', expected '${options.policy}'`)
    movedFrom.add(key(m.token, m.from))
    movedTo.add(key(m.token, m.to))
  }
  const added = new Set((outcome.added ?? []).map((p) => key(p.token, p.expert)))
  for (const k of inputKeys) {
    if (!outputKeys.has(k) && !dropped.has(k) && !movedFrom.has(k)) {
      const [t, e] = k.split(':')
      bad('conservation', `pair (token ${t}, expert ${e}) vanished: it is not in the output, not rerouted and not reported dropped`)
    }
  }
  for (const k of outputKeys) {
    if (!inputKeys.has(k) && !movedTo.has(k) && !added.has(k)) {
      const [t, e] = k.split(':')
      bad('conservation', `pair (token ${t}, expert ${e}) appeared: it was not in the input and is neither a reroute target nor in 'added'`)
    }
  }

  const cap = outcome.capacity
  if (options.capacity !== false && typeof cap === 'number' && !outcome.skipped) {
    if (!Number.isInteger(cap) || cap < 0) bad('capacity', `reported capacity ${cap} is not a non-negative integer`)
    const load = new Array<number>(r.experts).fill(0)
    for (const k of outputKeys) load[Number(k.split(':')[1])]++
    load.forEach((l, e) => {
      if (l > cap) bad('capacity', `expert ${e} has ${l} pairs, over the reported capacity ${cap}`)
    })
  }
  if (outcome.skipped !== undefined && (typeof outcome.skipped !== 'string' || outcome.skipped.length === 0)) {
    bad('shape', 'outcome.skipped must be a non-empty string saying why')
  }
  return out
}

/** True when two routings hold the same values (typed arrays compared element-wise). */
export function sameRouting(a: Routing, b: Routing): boolean {
  return fingerprint(a) === fingerprint(b)
}

/** A canonical string of an outcome: routing arrays, drops, moves, additions, capacity, skip. */
export function outcomeFingerprint(o: PolicyOutcome): string {
  return JSON.stringify({
    routing: fingerprint(o.routing),
    dropped: o.dropped,
    rerouted: o.rerouted ?? [],
    added: o.added ?? [],
    capacity: o.capacity ?? null,
    skipped: o.skipped ?? null,
  })
}

function fingerprint(r: Routing): string {
  return JSON.stringify({
    tokens: r.tokens,
    experts: r.experts,
    topK: r.topK,
    slots: r.slots,
    normalizeTopK: r.normalizeTopK,
    decode: r.decode ?? false,
    expertIds: Array.from(r.expertIds ?? []),
    weights: Array.from(r.weights ?? []),
    scores: Array.from(r.scores ?? []),
    sourceDevice: r.sourceDevice ? Array.from(r.sourceDevice) : null,
  })
}
