/**
 * The chunked group-select (count pass, then write pass per (expert, chunk)) against the
 * host's grouping rule, bit for bit (the whole `kept` buffer, counts and the overflow counter),
 * and against the single-pass kernel on shapes a CPU adapter runs it fast. The rule: per expert, the pairs in priority order (token
 * then slot, or slot then token), all of them, or the first `cap` per source segment with the
 * rest counted as overflow and NO_PAIR after each segment's pairs. Batches of many chunks
 * with skewed routing (empty experts) and dropped slots (id −1), padded per source segment,
 * choice-major order, small forced chunks with a partial last chunk, more than 256 segments,
 * and a batch large enough that chunks grow to keep 256 per expert.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { groupByExpert, mulberry32 } from '@moe-route/core'
import { acquireDevice } from '../gpu/device.js'
import { GpuContext } from '../gpu/context.js'
import { webgpuAdapterForTests } from '../testing/gpu-env.js'
import { GROUP_SELECT_PER, groupCountProgram, groupSelectChunking, groupSelectProgram, groupSelectScratchWords, groupWriteProgram, type GroupSelectParams } from './grouping.program.js'
import { NO_PAIR } from './grouping.wgsl.js'

vi.setConfig({ testTimeout: 60_000 })
const adapter = await webgpuAdapterForTests()

/** What `kept` holds before the kernels run (the exact mode leaves positions past counts alone). */
const UNWRITTEN = 0xdeadbeef
/** Word of STAT_DROPPED in the test's counters, and what it holds before. */
const STAT = 3
const STAT0 = 7

interface Case {
  readonly tokens: number
  readonly slots: number
  readonly experts: number
  readonly padded?: { readonly cap: number; readonly segments: number }
  readonly choice?: boolean
  /** Source device per token (a segment id; may be past the segments). */
  readonly source?: Int32Array
}

interface Selected {
  readonly kept: Uint32Array
  readonly counts: Uint32Array
  /** What the kernels added to STAT_DROPPED. */
  readonly overflow: number
}

/** Index of the first word where `a` and `b` differ (−1: none; toEqual is slow on millions of words). */
function firstDifference(a: Uint32Array, b: Uint32Array): number {
  if (a.length !== b.length) return Math.min(a.length, b.length)
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return i
  return -1
}

/** Skewed routing: experts drawn ∝ (1 − u)² from the first `hot` ≥ S (the rest stay empty), distinct per token, ~10% of slots dropped (−1). */
function skewedIds(T: number, S: number, hot: number, seed: number): Int32Array {
  if (hot < S) throw new RangeError(`skewedIds: ${S} distinct experts per token need hot ≥ ${S}, got ${hot}`)
  const random = mulberry32(seed)
  const ids = new Int32Array(T * S)
  for (let t = 0; t < T; t++) {
    for (let j = 0; j < S; j++) {
      let e = Math.floor(hot * random() ** 2)
      while (ids.subarray(t * S, t * S + j).includes(e)) e = (e + 1) % hot
      ids[t * S + j] = e
    }
    for (let j = 0; j < S; j++) if (random() < 0.1) ids[t * S + j] = -1
  }
  return ids
}

/** Source devices per token, uniform over `segments`. */
function sources(T: number, segments: number, seed: number): Int32Array {
  const random = mulberry32(seed)
  return Int32Array.from({ length: T }, () => Math.floor(random() * segments))
}

/** The host's rule, written position by position in priority order. */
function hostSelect(ids: Int32Array, c: Case): Selected {
  const { tokens: T, slots: S, experts: E } = c
  const P = T * S
  const segments = c.padded?.segments ?? 1
  const cap = c.padded?.cap ?? 0
  const width = c.padded ? segments * cap : P
  const kept = new Uint32Array(E * width).fill(c.padded ? NO_PAIR : UNWRITTEN)
  const seen = new Uint32Array(E * segments)
  for (let q = 0; q < P; q++) {
    const p = c.choice ? (q % T) * S + Math.floor(q / T) : q
    const e = ids[p]
    if (e < 0 || e >= E) continue
    const seg = segments > 1 ? c.source![Math.floor(p / S)] : 0
    if (seg < 0 || seg >= segments) continue
    const n = seen[e * segments + seg]++
    if (!c.padded) kept[e * width + n] = p
    else if (n < cap) kept[e * width + seg * cap + n] = p
  }
  const counts = new Uint32Array(E)
  let overflow = 0
  for (let e = 0; e < E; e++) {
    for (let s = 0; s < segments; s++) {
      const n = seen[e * segments + s]
      const k = c.padded ? Math.min(n, cap) : n
      counts[e] += k
      overflow += n - k
    }
  }
  return { kept, counts, overflow }
}

describe.skipIf(!adapter)(`group-select kernels on ${adapter}`, () => {
  let ctx: GpuContext
  beforeAll(async () => {
    ctx = new GpuContext(await acquireDevice())
  })
  afterAll(() => ctx?.dispose())

  /** Runs the single-pass kernel (`per` undefined and `single`), or the chunked passes. */
  async function select(ids: Int32Array, c: Case, path: { single: true } | { per?: number }): Promise<Selected> {
    const { tokens: T, slots: S, experts: E } = c
    const segments = c.padded?.segments ?? 1
    const head = 5 // aux words before the source devices, as the placement head sits there
    const aux = new Uint32Array(head + T)
    if (c.source) aux.set(c.source, head)
    const p: GroupSelectParams & { per?: number } = {
      tokens: T,
      slots: S,
      experts: E,
      padded: !!c.padded,
      cap: c.padded?.cap ?? 0,
      segments,
      choice: !!c.choice,
      srcBase: head,
      width: c.padded ? segments * c.padded.cap : T * S,
      statBase: STAT,
      ...('per' in path && path.per !== undefined ? { per: path.per } : {}),
    }
    const counters = new Uint32Array(8)
    counters[STAT] = STAT0
    const b = {
      ids: ctx.upload(ids, 'ids', 16),
      aux: ctx.upload(aux, 'aux', 16),
      kept: ctx.upload(new Uint32Array(Math.max(4, E * p.width)).fill(UNWRITTEN), 'kept', 16),
      counts: ctx.upload(new Uint32Array(Math.max(4, E)).fill(UNWRITTEN), 'counts', 16),
      counters: ctx.upload(counters, 'counters', 16),
    }
    const rec = ctx.recorder('group-select test')
    let scratch: GPUBuffer | null = null
    if ('single' in path) rec.run(groupSelectProgram(), p, [b.ids, b.aux, b.kept, b.counts, b.counters])
    else {
      scratch = ctx.storage(Math.max(16, groupSelectScratchWords(p) * 4), 'group-scratch')
      rec.run(groupCountProgram(), p, [b.ids, b.aux, scratch])
      rec.run(groupWriteProgram(), p, [b.ids, b.aux, scratch, b.kept, b.counts, b.counters])
    }
    rec.read(b.kept, E * p.width * 4)
    rec.read(b.counts, E * 4)
    rec.read(b.counters, counters.byteLength)
    const [kept, cnt, ctr] = (await rec.submit()).reads
    for (const x of [...Object.values(b), ...(scratch ? [scratch] : [])]) x.destroy()
    return { kept: new Uint32Array(kept), counts: new Uint32Array(cnt), overflow: new Uint32Array(ctr)[STAT] - STAT0 }
  }

  /**
   * Chunked (default chunks, or `per` pairs an invocation) agrees with the host's rule, and
   * with the single-pass kernel when `single` (slow on a CPU adapter past a few chunks).
   */
  async function expectSame(ids: Int32Array, c: Case, opts: { per?: number; single?: boolean } = {}): Promise<Selected> {
    const want = hostSelect(ids, c)
    const got = await select(ids, c, { per: opts.per })
    expect(got.counts).toEqual(want.counts)
    expect(got.overflow).toBe(want.overflow)
    expect(firstDifference(got.kept, want.kept)).toBe(-1)
    if (opts.single) {
      const old = await select(ids, c, { single: true })
      expect(firstDifference(old.kept, got.kept)).toBe(-1)
      expect(old.counts).toEqual(got.counts)
      expect(old.overflow).toBe(got.overflow)
    }
    return want
  }

  it('exact groups over many chunks (T 3000, 8 slots, E 64, 24 experts empty, dropped slots), as core groupByExpert orders them', async () => {
    const c: Case = { tokens: 3000, slots: 8, experts: 64 }
    expect(groupSelectChunking(c.tokens * c.slots)?.chunks).toBe(12)
    const ids = skewedIds(c.tokens, c.slots, 40, 11)
    const want = await expectSame(ids, c)
    expect(Array.from(want.counts.subarray(40)).every((n) => n === 0)).toBe(true)
    expect(want.counts[0]).toBeGreaterThan(4 * want.counts[39])
    // token-major exact order is core's grouping: pair t·S + j per row
    const g = groupByExpert({ tokens: c.tokens, experts: c.experts, slots: c.slots, expertIds: ids, weights: new Float32Array(ids.length) })
    for (const e of [0, 7, 39]) {
      const rows = Array.from({ length: g.counts[e] }, (_, i) => g.rowToken[g.offsets[e] + i] * c.slots + g.rowSlot[g.offsets[e] + i])
      expect(Array.from(want.kept.subarray(e * c.tokens * c.slots, e * c.tokens * c.slots + g.counts[e]))).toEqual(rows)
    }
  })

  it('exact groups in choice-major order (T 3000, 8 slots, E 64)', async () => {
    await expectSame(skewedIds(3000, 8, 40, 12), { tokens: 3000, slots: 8, experts: 64, choice: true })
  })

  it('padded per source segment (2 segments) with cap below the hot experts: overflow counted, NO_PAIR after each segment', async () => {
    const T = 3000
    const source = sources(T, 2, 13)
    const ids = skewedIds(T, 8, 40, 14)
    for (const choice of [false, true]) {
      const c: Case = { tokens: T, slots: 8, experts: 64, padded: { cap: 300, segments: 2 }, choice, source }
      const want = await expectSame(ids, c)
      expect(want.overflow).toBeGreaterThan(0)
      expect(want.kept.includes(NO_PAIR)).toBe(true)
    }
  })

  it('padded with one segment and cap 0 (everything overflows)', async () => {
    const ids = skewedIds(3000, 4, 16, 15)
    const want = await expectSame(ids, { tokens: 3000, slots: 4, experts: 16, padded: { cap: 0, segments: 1 } })
    expect(want.overflow).toBe(Array.from(ids).filter((e) => e >= 0).length)
  })

  it('small forced chunks with a partial last chunk, 3 segments and a source device past them, bit for bit as the single-pass kernel', async () => {
    const T = 501
    const source = sources(T, 3, 16)
    source[7] = 5 // never counted, by either kernel
    const ids = skewedIds(T, 3, 10, 17)
    for (const per of [1, 3]) {
      expect(groupSelectChunking(T * 3, per)!.chunks).toBe(Math.ceil((T * 3) / (256 * per)))
      await expectSame(ids, { tokens: T, slots: 3, experts: 12, padded: { cap: 40, segments: 3 }, source, choice: per === 3 }, { per, single: true })
      await expectSame(ids, { tokens: T, slots: 3, experts: 12, choice: per === 1 }, { per, single: true })
    }
  })

  it('more than 256 segments (the count pass takes them 256 at a time)', async () => {
    const T = 3000
    const source = sources(T, 300, 18)
    const want = await expectSame(skewedIds(T, 2, 4, 19), { tokens: T, slots: 2, experts: 4, padded: { cap: 3, segments: 300 }, source })
    expect(want.overflow).toBeGreaterThan(0)
  })

  it('grows the chunks past 256 per expert (T 90,000, 8 slots)', async () => {
    const c: Case = { tokens: 90_000, slots: 8, experts: 8 }
    const ch = groupSelectChunking(c.tokens * c.slots)!
    expect(ch.per).toBeGreaterThan(GROUP_SELECT_PER)
    expect(ch.chunks).toBeLessThanOrEqual(256)
    await expectSame(skewedIds(c.tokens, c.slots, 8, 20), c)
  })
})

describe('groupSelectChunking', () => {
  it('keeps the single-pass kernel while the batch is one chunk, then chunks of 256·8 pairs, at most 256 per expert', () => {
    expect(groupSelectChunking(0)).toBeNull()
    expect(groupSelectChunking(256 * 8)).toBeNull()
    expect(groupSelectChunking(256 * 8 + 1)).toEqual({ chunks: 2, per: 8 })
    expect(groupSelectChunking(2048 * 8)).toEqual({ chunks: 8, per: 8 })
    expect(groupSelectChunking(256 * 256 * 8)).toEqual({ chunks: 256, per: 8 })
    expect(groupSelectChunking(256 * 256 * 8 + 1)).toEqual({ chunks: 228, per: 9 })
    expect(groupSelectChunking(100, 1)).toEqual({ chunks: 1, per: 1 })
    expect(groupSelectScratchWords({ tokens: 64, slots: 4, experts: 8, padded: false, cap: 0, segments: 1, choice: false, srcBase: 0, width: 256, statBase: 0 })).toBe(0)
    expect(groupSelectScratchWords({ tokens: 4096, slots: 8, experts: 64, padded: true, cap: 9, segments: 2, choice: false, srcBase: 0, width: 18, statBase: 0 })).toBe(64 * 2 * 16)
  })
})
