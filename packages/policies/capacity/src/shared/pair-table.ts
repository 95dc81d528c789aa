/**
 * The capacity family's host paths over typed arrays: a routing's pairs as parallel arrays,
 * priority keys, the per-bucket capacity cut and the output routing, with no object per pair.
 * They make exactly the decisions of the object-based helpers (`keyedPairs`,
 * `keepWithinCapacity`, `renormalize`, `buildOutcome`), which stay as the readable reference.
 */
import { deriveRouting, ErrorCodes, MoeError, pairScores, type DroppedPair, type PolicyOutcome, type ReroutedPair, type Routing } from '@moe-route/core'
import type { Priority } from './priority.js'
import type { CapacityScope } from './scope.js'
import type { Renormalize } from './weights.js'

/** The non-empty slots of a routing in token order, then slot order. */
export interface PairTable {
  readonly count: number
  /** Slot index `t·slots + j` of each pair in the routing's arrays. */
  readonly slot: Int32Array
  readonly token: Int32Array
  readonly expert: Int32Array
  /** First pair of each token (length tokens + 1). */
  readonly tokenStart: Int32Array
}

/** Lists a routing's pairs. */
export function pairTable(routing: Routing): PairTable {
  const { tokens, slots, expertIds } = routing
  let count = 0
  for (let i = 0; i < expertIds.length; i++) if (expertIds[i] >= 0) count++
  const slot = new Int32Array(count)
  const token = new Int32Array(count)
  const expert = new Int32Array(count)
  const tokenStart = new Int32Array(tokens + 1)
  let p = 0
  for (let t = 0; t < tokens; t++) {
    tokenStart[t] = p
    for (let j = 0; j < slots; j++) {
      const e = expertIds[t * slots + j]
      if (e < 0) continue
      slot[p] = t * slots + j
      token[p] = t
      expert[p++] = e
    }
  }
  tokenStart[tokens] = p
  return { count, slot, token, expert, tokenStart }
}

/** Priority keys of the pairs (higher kept first); `random` draws one number per pair in table order. */
export function priorityKeys(routing: Routing, table: PairTable, priority: Priority, random?: () => number): Float64Array {
  if (priority === 'random' && !random) {
    throw new MoeError(ErrorCodes.INPUT_INVALID, "priority 'random' needs a seeded random generator (PolicyContext.random)")
  }
  const keys = new Float64Array(table.count)
  if (priority === 'score') {
    const s = pairScores(routing)
    for (let p = 0; p < table.count; p++) keys[p] = s[table.slot[p]]
  } else if (priority === 'first') for (let p = 0; p < table.count; p++) keys[p] = -table.token[p]
  else if (priority === 'last') for (let p = 0; p < table.count; p++) keys[p] = table.token[p]
  else for (let p = 0; p < table.count; p++) keys[p] = random!()
  return keys
}

/**
 * Capacity groups as pair lists: `global` one group of every pair; `per-source-device` one per
 * distinct source device, ascending (all on device 0 without source devices). Each group's
 * pairs are in table order; `tokens` is the group's token count.
 */
export function pairGroups(routing: Routing, table: PairTable, scope: CapacityScope): { pairs: Int32Array; tokens: number }[] {
  const all = () => {
    const pairs = new Int32Array(table.count)
    for (let p = 0; p < pairs.length; p++) pairs[p] = p
    return pairs
  }
  const src = routing.sourceDevice
  if (scope === 'global' || !src) return [{ pairs: all(), tokens: routing.tokens }]
  const devices = new Map<number, { tokens: number; pairs: number }>()
  for (let t = 0; t < routing.tokens; t++) {
    let d = devices.get(src[t])
    if (!d) devices.set(src[t], (d = { tokens: 0, pairs: 0 }))
    d.tokens++
    d.pairs += table.tokenStart[t + 1] - table.tokenStart[t]
  }
  const order = [...devices.keys()].sort((a, b) => a - b)
  const groups = order.map((d) => ({ device: d, pairs: new Int32Array(devices.get(d)!.pairs), tokens: devices.get(d)!.tokens, fill: 0 }))
  const index = new Map(order.map((d, i) => [d, i]))
  for (let t = 0; t < routing.tokens; t++) {
    const g = groups[index.get(src[t])!]
    for (let p = table.tokenStart[t]; p < table.tokenStart[t + 1]; p++) g.pairs[g.fill++] = p
  }
  return groups.map((g) => ({ pairs: g.pairs, tokens: g.tokens }))
}

/**
 * Keeps at most `capacity(b)` pairs of `members` in each bucket `bucketOf[p]`, by key
 * descending, then token, then expert ascending (then table order: a stable sort), and sets
 * `over[p] = 1` for the others. Buckets within capacity are untouched (no sort); `sorted[p]`
 * (optional) is set for the pairs of the buckets that were sorted. Returns how many pairs went over.
 */
export function capacityCut(
  table: PairTable,
  members: Int32Array,
  bucketOf: Int32Array | ((p: number) => number),
  buckets: number,
  capacity: (bucket: number) => number,
  keys: Float64Array,
  over: Uint8Array,
  sorted?: Uint8Array,
): number {
  // each member's bucket, in member order (plain loops: this runs over every pair of a batch)
  const bucket = new Int32Array(members.length)
  if (typeof bucketOf === 'function') for (let i = 0; i < members.length; i++) bucket[i] = bucketOf(members[i])
  else for (let i = 0; i < members.length; i++) bucket[i] = bucketOf[members[i]]
  const counts = new Int32Array(buckets)
  for (let i = 0; i < members.length; i++) counts[bucket[i]]++
  let any = false
  const cap = new Int32Array(buckets)
  for (let b = 0; b < buckets; b++) {
    cap[b] = Math.max(0, capacity(b))
    if (counts[b] > cap[b]) any = true
  }
  if (!any) return 0
  // counting sort of the members of over-capacity buckets, in member order
  const start = new Int32Array(buckets + 1)
  for (let b = 0; b < buckets; b++) start[b + 1] = start[b] + (counts[b] > cap[b] ? counts[b] : 0)
  const list = new Int32Array(start[buckets])
  const fill = start.slice(0, buckets)
  for (let i = 0; i < members.length; i++) {
    const b = bucket[i]
    if (counts[b] > cap[b]) list[fill[b]++] = members[i]
  }
  const { token, expert } = table
  const order = (a: number, b: number) => keys[b] - keys[a] || token[a] - token[b] || expert[a] - expert[b] || a - b
  const packed = packedKeys(keys, list, token)
  let maxToken = 0
  if (packed) for (let i = 0; i < list.length; i++) if (token[list[i]] > maxToken) maxToken = token[list[i]]
  const stamp = packed ? new Int32Array(maxToken + 1).fill(-1) : null
  let n = 0
  for (let b = 0; b < buckets; b++) {
    if (counts[b] <= cap[b]) continue
    const seg = list.subarray(start[b], start[b + 1])
    if (sorted) for (let i = 0; i < seg.length; i++) sorted[seg[i]] = 1
    if (packed && distinctTokens(seg, token, stamp!, b)) {
      // packed keys are distinct here: the members below the C-th largest are over (a selection, no sort)
      const values = packed.values.subarray(start[b], start[b + 1])
      if (cap[b] === 0) {
        for (let i = 0; i < seg.length; i++) over[seg[i]] = 1
      } else {
        const threshold = kthLargest(values.slice(), cap[b])
        for (let i = 0; i < seg.length; i++) if (values[i] < threshold) over[seg[i]] = 1
      }
      n += seg.length - cap[b]
      continue
    }
    seg.sort(order)
    for (let i = cap[b]; i < seg.length; i++) {
      over[seg[i]] = 1
      n++
    }
  }
  return n
}

const TOKEN_BITS = 2 ** 20
const f32 = new Float32Array(1)
const u32 = new Uint32Array(f32.buffer)

/**
 * The keep-first order of `list` as one number per member, so that buckets sort with the
 * engine's native numeric sort instead of a comparator: an integer image of the key (times
 * 2²⁰) plus 2²⁰ − 1 − token, exact below 2⁵³. Keys map to integers when they all are integers
 * (first/last priorities), all lie on the 2⁻³² grid in [0, 1) (seeded random draws), or are
 * all non-negative float32 values (gate scores: their bit patterns order like the values).
 * Null when none applies or a token index is ≥ 2²⁰: the comparator sort is used then.
 */
function packedKeys(keys: Float64Array, list: Int32Array, token: Int32Array): { values: Float64Array } | null {
  const n = list.length
  if (n === 0) return null
  let ints = true
  let grid = true
  let floats = true
  let min = Infinity
  let max = -Infinity
  for (let i = 0; i < n; i++) {
    const p = list[i]
    const k = keys[p]
    if (token[p] >= TOKEN_BITS) return null
    if (ints && !Number.isInteger(k)) ints = false
    if (grid && !(k >= 0 && k < 1 && Number.isInteger(k * 4294967296))) grid = false
    if (floats && !(k >= 0 && Math.fround(k) === k)) floats = false
    if (k < min) min = k
    if (k > max) max = k
    if (!ints && !grid && !floats) return null
  }
  if (ints && max - min >= 2 ** 32) ints = false
  if (!ints && !grid && !floats) return null
  const values = new Float64Array(n)
  for (let i = 0; i < n; i++) {
    const p = list[i]
    const k = keys[p]
    let image: number
    if (ints) image = k - min
    else if (grid) image = k * 4294967296
    else if (k === 0) image = 0 // -0 too: its sign bit would order it above every positive key
    else {
      f32[0] = k
      image = u32[0]
    }
    values[i] = image * TOKEN_BITS + (TOKEN_BITS - 1 - token[p])
  }
  return { values }
}

/** True when no token has two members in the bucket (`stamp` marks the bucket's tokens with `bucketId`). */
function distinctTokens(members: Int32Array, token: Int32Array, stamp: Int32Array, bucketId: number): boolean {
  for (let i = 0; i < members.length; i++) {
    const t = token[members[i]]
    if (stamp[t] === bucketId) return false
    stamp[t] = bucketId
  }
  return true
}

/** The k-th largest of `v` (1-based; `v` is reordered): Hoare quickselect with a median of three, O(n) on average. */
function kthLargest(v: Float64Array, k: number): number {
  let lo = 0
  let hi = v.length - 1
  const target = v.length - k // index of the k-th largest in ascending order
  while (lo < hi) {
    const mid = (lo + hi) >>> 1
    let a = v[lo]
    let b = v[mid]
    let c = v[hi]
    if (a > b) [a, b] = [b, a]
    if (b > c) [b, c] = [c, b]
    if (a > b) [a, b] = [b, a]
    const pivot = b
    let i = lo
    let j = hi
    while (i <= j) {
      while (v[i] < pivot) i++
      while (v[j] > pivot) j--
      if (i <= j) {
        const x = v[i]
        v[i] = v[j]
        v[j] = x
        i++
        j--
      }
    }
    if (target <= j) hi = j
    else if (target >= i) lo = i
    else return v[target]
  }
  return v[target]
}

/**
 * Output pairs of a policy, grouped by token in ascending token order: `token[i]`, `expert[i]`,
 * the final weight (double, before float32 storage) and the pair's gate score.
 */
export interface OutputPairs {
  count: number
  token: Int32Array
  expert: Int32Array
  weight: Float64Array
  score: Float32Array
}

/** Room for up to `capacity` output pairs. */
export function outputPairs(capacity: number): OutputPairs {
  return { count: 0, token: new Int32Array(capacity), expert: new Int32Array(capacity), weight: new Float64Array(capacity), score: new Float32Array(capacity) }
}

/** Appends one output pair (tokens must come in ascending order). */
export function pushPair(out: OutputPairs, token: number, expert: number, weight: number, score: number): void {
  const i = out.count++
  out.token[i] = token
  out.expert[i] = expert
  out.weight[i] = weight
  out.score[i] = score
}

/**
 * Applies a renormalisation mode to output pairs in place: `model-native` weighs a pair by its
 * score over the token's input-pair score sum (`normalizeTopK`) or by its score; `kept` divides
 * by the token's sum of output weights, added in output order. Same arithmetic as `renormalize`.
 */
export function renormalizeOutput(routing: Routing, out: OutputPairs, mode: Renormalize): void {
  if (mode === 'none') return
  if (mode === 'model-native') {
    const den = nativeDenominatorsTyped(routing)
    for (let i = 0; i < out.count; i++) out.weight[i] = out.score[i] / den[out.token[i]]
    return
  }
  let i = 0
  while (i < out.count) {
    const t = out.token[i]
    let j = i
    let sum = 0
    while (j < out.count && out.token[j] === t) sum += out.weight[j++]
    for (let x = i; x < j; x++) out.weight[x] = sum > 0 ? out.weight[x] / sum : 0
    i = j
  }
}

/** Per token, the denominator of the model's native weights from the pair scores (1 unless `normalizeTopK`). */
export function nativeDenominatorsTyped(routing: Routing): Float64Array {
  const { tokens, slots, expertIds, normalizeTopK } = routing
  const den = new Float64Array(tokens).fill(1)
  if (!normalizeTopK) return den
  const s = pairScores(routing)
  for (let t = 0; t < tokens; t++) {
    let sum = 0
    for (let j = 0; j < slots; j++) if (expertIds[t * slots + j] >= 0) sum += s[t * slots + j]
    den[t] = sum > 0 ? sum : 1
  }
  return den
}

/**
 * The output routing of output pairs, as core's `routingFromPairs` lays it out: slots as wide
 * as the widest token (at least topK), each token's pairs by weight descending then expert
 * ascending, empty slots −1. Lazily made scores stay lazy; the pairs' scores travel along.
 */
export function routingFromOutput(input: Routing, out: OutputPairs): Routing {
  const T = input.tokens
  let slots = input.topK
  const start = new Int32Array(T + 1)
  for (let i = 0; i < out.count; i++) start[out.token[i] + 1]++
  for (let t = 0; t < T; t++) {
    if (start[t + 1] > slots) slots = start[t + 1]
    start[t + 1] += start[t]
  }
  const expertIds = new Int32Array(T * slots).fill(-1)
  const weights = new Float32Array(T * slots)
  const scores = new Float32Array(T * slots)
  const idx = new Int32Array(slots)
  const { weight, expert, score } = out
  for (let t = 0; t < T; t++) {
    const a = start[t]
    const n = start[t + 1] - a
    // insertion sort of the token's pairs: weight descending, expert ascending (stable)
    for (let i = 0; i < n; i++) {
      const p = a + i
      let j = i
      while (j > 0) {
        const q = idx[j - 1]
        if (weight[q] < weight[p] || (weight[q] === weight[p] && expert[q] > expert[p])) {
          idx[j] = q
          j--
        } else break
      }
      idx[j] = p
    }
    for (let j = 0; j < n; j++) {
      const p = idx[j]
      expertIds[t * slots + j] = expert[p]
      weights[t * slots + j] = weight[p]
      scores[t * slots + j] = score[p]
    }
  }
  return deriveRouting(input, { slots, expertIds, weights, pairScores: scores })
}

/**
 * True when `routingFromPairs` would lay the routing's own pairs out exactly as they already
 * are: slots = topK, every slot filled, each token's slots by weight descending then expert
 * ascending. A policy that keeps every pair with its weight can then share the input arrays.
 */
export function isCanonicalLayout(routing: Routing): boolean {
  const { tokens, slots, topK, expertIds, weights } = routing
  if (slots !== topK) return false
  for (let t = 0; t < tokens; t++) {
    const o = t * slots
    if (expertIds[o] < 0) return false
    for (let j = 1; j < slots; j++) {
      const e = expertIds[o + j]
      if (e < 0) return false
      const w0 = weights[o + j - 1]
      const w1 = weights[o + j]
      if (w0 < w1 || (w0 === w1 && expertIds[o + j - 1] > e)) return false
    }
  }
  return true
}

/** Pairs per expert of a whole routing. */
export function expertCounts(routing: Routing): Int32Array {
  const counts = new Int32Array(routing.experts)
  const ids = routing.expertIds
  for (let i = 0; i < ids.length; i++) if (ids[i] >= 0) counts[ids[i]]++
  return counts
}

/**
 * A lazily built `dropped` list: pairs flagged in `over` (table order), sorted by token then
 * expert (stable), as `buildOutcome` reports them. Nothing is allocated unless it is read.
 */
export function droppedList(routing: Routing, table: PairTable, over: Uint8Array, reason: string | ((p: number) => string), policy: string): () => DroppedPair[] {
  let list: DroppedPair[] | null = null
  return () => {
    if (list) return list
    const out: { p: number; d: DroppedPair }[] = []
    for (let p = 0; p < table.count; p++) {
      if (!over[p]) continue
      out.push({ p, d: { token: table.token[p], expert: table.expert[p], weight: routing.weights[table.slot[p]], reason: typeof reason === 'string' ? reason : reason(p), policy } })
    }
    out.sort((a, b) => a.d.token - b.d.token || a.d.expert - b.d.expert || a.p - b.p)
    list = out.map((x) => x.d)
    return list
  }
}

/** An outcome object whose `dropped` (and `rerouted`/`added`) arrays are made on first read. */
export function lazyOutcome<T extends object>(fields: T, lazy: Record<string, () => unknown>): T {
  const out = { ...fields }
  for (const [key, make] of Object.entries(lazy)) {
    let value: unknown
    let made = false
    Object.defineProperty(out, key, {
      enumerable: true,
      configurable: true,
      get() {
        if (!made) {
          value = make()
          made = true
        }
        return value
      },
    })
  }
  return out
}

/** A pair a rerouting policy moved: its token, the expert it left, the one it went to and its index in the output. */
export interface OutputMove {
  readonly token: number
  readonly from: number
  readonly to: number
  readonly at: number
}

/** What {@link capacityOutcome} makes an outcome of. */
export interface CapacityOutcomeParts {
  readonly table: PairTable
  /** Input pairs (table order) the policy dropped. */
  readonly over: Uint8Array
  /** Reason of every dropped pair, or of pair `p`. */
  readonly reason: string | ((p: number) => string)
  readonly policy: string
  /** The per-expert capacity the policy enforced (`null`: none). */
  readonly capacity: number | null
  /** How the output weights are renormalised (absent: they are final). */
  readonly renormalize?: Renormalize
  /** Further lists made on first read: a rerouting policy's `rerouted` ({@link reroutedList}), expanded-drop's `added`. */
  readonly lazy?: Record<string, () => unknown>
}

/**
 * The outcome of a capacity policy from its output pairs, the one way every policy of the family
 * ends: the output renormalised, the routing made from it, and made on first read the dropped
 * pairs (table order → sorted by token, then expert) and the `lazy` lists.
 */
export function capacityOutcome(routing: Routing, out: OutputPairs, parts: CapacityOutcomeParts): PolicyOutcome {
  if (parts.renormalize) renormalizeOutput(routing, out, parts.renormalize)
  return lazyOutcome({ routing: routingFromOutput(routing, out), capacity: parts.capacity } as PolicyOutcome, {
    dropped: droppedList(routing, parts.table, parts.over, parts.reason, parts.policy),
    ...parts.lazy,
  })
}

/**
 * A rerouting policy's moves as ReroutedPairs, sorted by token, source expert, then the order
 * they were made, each with its weight in the (renormalised) output; made when called.
 */
export function reroutedList(out: OutputPairs, count: number, move: (i: number) => OutputMove, policy: string): () => ReroutedPair[] {
  return () =>
    Array.from({ length: count }, (_, i) => ({ i, m: move(i) }))
      .sort((x, y) => x.m.token - y.m.token || x.m.from - y.m.from || x.i - y.i)
      .map(({ m }) => ({ token: m.token, from: m.from, to: m.to, weight: out.weight[m.at], policy }))
}
