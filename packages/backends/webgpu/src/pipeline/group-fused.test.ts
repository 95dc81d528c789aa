/**
 * The fused small-batch grouping kernel (`group-fused`, one workgroup) against the separate
 * kernels it replaces (group-select, dispatch-offsets, a clear of tokenRows, group-scatter) on
 * the same inputs, bit for bit on every buffer they write (counts, the overflow counter,
 * offsets with the active list and slot table, the GEMM grid args, rowToken, rowWeight,
 * tokenRows), every buffer filled with the same stale words first (so a word one path writes
 * and the other leaves alone shows up too). Random routings: exact and padded (one segment,
 * several with source devices past them, caps below the busiest groups, cap 0), token and
 * choice priority, dropped slots (−1), ids past E, an expert repeated within a token,
 * E ∈ {1, 8, 64, 256}, T·S from 1 to the fused bound.
 */
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest'
import { mulberry32 } from '@moe-route/core'
import { acquireDevice } from '../gpu/device.js'
import { GpuContext } from '../gpu/context.js'
import { webgpuAdapterForTests } from '../testing/gpu-env.js'
import { offsetsProgram } from '../kernels/dispatch/dispatch.program.js'
import {
  GROUP_FUSED_DEFAULT_PAIRS,
  GROUP_FUSED_MAX_PAIRS,
  GROUP_FUSED_MAX_ROWS,
  GROUP_FUSED_STORAGE_BUFFERS,
  groupFusedApplies,
  groupFusedProgram,
  groupScatterProgram,
  groupSelectProgram,
  groupSelectScratchWords,
  type GroupFusedParams,
} from './grouping.program.js'

vi.setConfig({ testTimeout: 180_000 })
const adapter = await webgpuAdapterForTests()

/** Every output word before the kernels run (a pooled buffer's stale contents). */
const STALE = 0xdeadbeef
/** Words of the test's counters; STAT_DROPPED's word and what it holds before. */
const COUNTER_WORDS = 8
const STAT = 5
const STAT0 = 11
/** aux words before the source devices (the placement head sits there in the pipeline). */
const HEAD = 3

interface Case {
  readonly tokens: number
  readonly slots: number
  readonly experts: number
  readonly padded?: { readonly cap: number; readonly segments: number }
  readonly choice: boolean
  readonly ids: Int32Array
  readonly w: Float32Array
  /** Source device per token (may be past the segments: never counted). */
  readonly source: Uint32Array
  readonly grid: { colsGateUp: number; colsDown: number; bm: number; bn: number; bnDown: number }
}

/** What a grouping path leaves in the buffers it writes. */
interface Written {
  readonly counts: Uint32Array
  readonly counters: Uint32Array
  readonly offsets: Uint32Array
  readonly args: Uint32Array
  readonly rowToken: Uint32Array
  readonly rowWeight: Uint32Array
  readonly tokenRows: Uint32Array
}

/**
 * A random routing: ~15% of slots dropped (−1), a few ids past E, the rest skewed toward low
 * experts (so some groups pass the cap) and free to repeat within a token; weights of every
 * sign, −0 among them (bits must survive the copy).
 */
function randomCase(seed: number, tokens: number, slots: number, experts: number, mode: 'exact' | 'padded', segments = 1): Case {
  const random = mulberry32(seed)
  const P = tokens * slots
  const ids = Int32Array.from({ length: P }, () => {
    const u = random()
    if (u < 0.15) return -1
    if (u < 0.17) return experts + Math.floor(random() * 3)
    return Math.floor(experts * random() ** 2)
  })
  // an expert twice in one token
  if (slots > 1) ids[(tokens - 1) * slots + 1] = ids[(tokens - 1) * slots] = Math.floor(random() * experts)
  const w = Float32Array.from({ length: P }, () => (random() - 0.3) * 2)
  w[0] = -0
  const source = Uint32Array.from({ length: tokens }, () => (random() < 0.05 ? segments + 1 : Math.floor(random() * segments)))
  let padded: Case['padded']
  if (mode === 'padded') {
    // the cap at about the mean group per segment (busiest groups overflow), 0 now and then,
    // and no more rows than the fused kernel takes
    const mean = Math.ceil(P / (experts * segments))
    let cap = random() < 0.1 ? 0 : Math.max(1, Math.round(mean * (0.5 + random())))
    cap = Math.min(cap, Math.floor(GROUP_FUSED_MAX_ROWS / (experts * segments)))
    padded = { cap, segments }
  }
  const grid = { colsGateUp: 1 + Math.floor(random() * 300), colsDown: 1 + Math.floor(random() * 300), bm: 1 + Math.floor(random() * 64), bn: 1 + Math.floor(random() * 64), bnDown: 1 + Math.floor(random() * 64) }
  return { tokens, slots, experts, choice: random() < 0.5, ids, w, source, grid, ...(padded ? { padded } : {}) }
}

function paramsOf(c: Case): GroupFusedParams {
  const segments = c.padded?.segments ?? 1
  return {
    tokens: c.tokens,
    slots: c.slots,
    experts: c.experts,
    padded: !!c.padded,
    cap: c.padded?.cap ?? 0,
    segments,
    choice: c.choice,
    srcBase: HEAD,
    width: c.padded ? segments * c.padded.cap : c.tokens * c.slots,
    statBase: STAT,
    ...c.grid,
  }
}

describe.skipIf(!adapter)(`group-fused kernel on ${adapter}`, () => {
  let ctx: GpuContext
  beforeAll(async () => {
    ctx = new GpuContext(await acquireDevice())
  })
  afterAll(() => ctx?.dispose())

  /** Runs the separate kernels (as the pipeline does for large batches) or the fused one. */
  async function group(c: Case, fused: boolean): Promise<Written> {
    const p = paramsOf(c)
    const { experts: E } = c
    const P = c.tokens * c.slots
    const rowsBound = p.padded ? E * p.width : P
    const aux = new Uint32Array(HEAD + c.tokens).fill(STALE)
    aux.set(c.source, HEAD)
    const counters = new Uint32Array(COUNTER_WORDS).fill(STALE)
    counters[STAT] = STAT0
    const stale = (words: number, label: string) => ctx.upload(new Uint32Array(Math.max(4, words)).fill(STALE), label, 16)
    const b = {
      ids: ctx.upload(c.ids, 'ids', 16),
      aux: ctx.upload(aux, 'aux', 16),
      w: ctx.upload(c.w, 'w', 16),
      counts: stale(E, 'counts'),
      counters: ctx.upload(counters, 'counters', 16),
      offsets: stale(3 * E + 1, 'offsets'),
      args: stale(8, 'args'),
      rowToken: stale(rowsBound, 'rowToken'),
      rowWeight: stale(rowsBound, 'rowWeight'),
      tokenRows: stale(P, 'tokenRows'),
      kept: stale(E * Math.max(1, p.width), 'kept'),
    }
    const rec = ctx.recorder('group-fused test')
    if (fused) {
      rec.run(groupFusedProgram(), p, [b.ids, b.aux, b.w, b.counts, b.counters, b.offsets, b.args, b.rowToken, b.rowWeight, b.tokenRows])
    } else {
      expect(groupSelectScratchWords(p)).toBe(0) // the single-pass group-select at these sizes
      rec.run(groupSelectProgram(), p, [b.ids, b.aux, b.kept, b.counts, b.counters])
      rec.run(offsetsProgram(), { experts: E, isStatic: p.padded, capacity: p.width, ...c.grid }, [b.counts, b.offsets, b.args])
      rec.clear(b.tokenRows, P * 4)
      if (rowsBound > 0) rec.run(groupScatterProgram(), { slots: c.slots, experts: E, width: p.width }, [b.w, b.offsets, b.kept, b.rowToken, b.rowWeight, b.tokenRows])
    }
    const out = [b.counts, b.counters, b.offsets, b.args, b.rowToken, b.rowWeight, b.tokenRows] as const
    for (const x of out) rec.read(x, x.size)
    const reads = (await rec.submit()).reads.map((r) => new Uint32Array(r))
    for (const x of Object.values(b)) x.destroy()
    const [cnt, ctr, offs, args, rt, rw, tr] = reads
    return { counts: cnt, counters: ctr, offsets: offs, args, rowToken: rt, rowWeight: rw, tokenRows: tr }
  }

  /** The fused kernel writes what the separate kernels write, word for word; returns theirs. */
  async function expectSame(c: Case): Promise<Written> {
    const p = paramsOf(c)
    expect(groupFusedApplies(p, ctx.device.limits, GROUP_FUSED_MAX_PAIRS)).toBe(true)
    const want = await group(c, false)
    const got = await group(c, true)
    const what = `E ${c.experts} T ${c.tokens} S ${c.slots} ${c.padded ? `padded cap ${c.padded.cap} × ${c.padded.segments}` : 'exact'} ${c.choice ? 'choice' : 'token'}`
    for (const k of Object.keys(want) as (keyof Written)[]) {
      const a = want[k]
      const g = got[k]
      let i = 0
      while (i < a.length && a[i] === g[i]) i++
      expect(i === a.length ? -1 : i, `${what}: ${k} differs at word ${i} (separate ${a[i]}, fused ${g[i]})`).toBe(-1)
    }
    return want
  }

  /** T·S from 1 to the bound: T = 1, 2, 3; a few random; the bound itself with S 8, 4 and 1; one under it. */
  function shapes(seed: number, slots: number): number[] {
    const random = mulberry32(seed)
    const max = Math.floor(GROUP_FUSED_MAX_PAIRS / slots)
    return [1, 2, 3, ...Array.from({ length: 3 }, () => 1 + Math.floor(random() * max)), max]
  }

  it('exact groups: E 1, 8, 64, 256 × S 1, 2, 4, 8 × T·S from 1 to the bound, token and choice order', async () => {
    let seed = 100
    for (const E of [1, 8, 64, 256]) {
      for (const S of [1, 2, 4, 8]) {
        for (const T of shapes(seed++, S)) await expectSame(randomCase(seed++, T, S, E, 'exact'))
      }
    }
    // just under the bound, 3 slots (the last invocation's positions partly past P)
    await expectSame(randomCase(seed++, 341, 3, 64, 'exact'))
  })

  it('padded with one segment: caps below the busiest groups (overflow counted), cap 0', async () => {
    let seed = 200
    let overflowed = 0
    for (const E of [1, 8, 64, 256]) {
      for (const S of [1, 2, 8]) {
        for (const T of shapes(seed++, S)) {
          const c = randomCase(seed++, T, S, E, 'padded')
          const want = await expectSame(c)
          if (want.counters[STAT] > STAT0) overflowed++
        }
      }
    }
    expect(overflowed).toBeGreaterThan(10)
    const zero = randomCase(seed++, 100, 4, 8, 'padded')
    const want = await expectSame({ ...zero, padded: { cap: 0, segments: 1 } })
    expect(want.counters[STAT] - STAT0).toBe(Array.from(zero.ids).filter((e) => e >= 0 && e < 8).length)
  })

  it('padded per source segment (2, 3, 5 segments; some tokens past them), token and choice order', async () => {
    let seed = 300
    let overflowed = 0
    for (const segments of [2, 3, 5]) {
      for (const E of [1, 8, 64, 256]) {
        for (const S of [2, 4]) {
          for (const T of shapes(seed++, S)) {
            const want = await expectSame(randomCase(seed++, T, S, E, 'padded', segments))
            if (want.counters[STAT] > STAT0) overflowed++
          }
        }
      }
    }
    expect(overflowed).toBeGreaterThan(10)
  })

  it('applies from 1 pair to the bound only (T = 0 and larger batches keep the separate kernels), E ≤ 256, padded rows within bound, 10 storage buffers', () => {
    const p = paramsOf(randomCase(1, 4, 2, 8, 'exact'))
    const limits = { maxStorageBuffersPerShaderStage: GROUP_FUSED_STORAGE_BUFFERS }
    expect(groupFusedApplies(p, limits)).toBe(true)
    expect(groupFusedApplies({ ...p, tokens: 0 }, limits)).toBe(false)
    expect(groupFusedApplies({ ...p, tokens: GROUP_FUSED_DEFAULT_PAIRS / 2 }, limits)).toBe(true)
    expect(groupFusedApplies({ ...p, tokens: GROUP_FUSED_DEFAULT_PAIRS / 2 + 1 }, limits)).toBe(false)
    expect(groupFusedApplies({ ...p, tokens: GROUP_FUSED_MAX_PAIRS / 2 }, limits, GROUP_FUSED_MAX_PAIRS)).toBe(true)
    expect(groupFusedApplies(p, limits, 7)).toBe(false)
    expect(groupFusedApplies(p, limits, 8)).toBe(true)
    expect(groupFusedApplies(p, limits, 0)).toBe(false)
    expect(groupFusedApplies(p, limits, 1 << 20)).toBe(true)
    expect(groupFusedApplies({ ...p, tokens: 1000 }, limits, 1 << 20)).toBe(false)
    expect(groupFusedApplies({ ...p, experts: 257 }, limits)).toBe(false)
    expect(groupFusedApplies({ ...p, padded: true, experts: 256, width: GROUP_FUSED_MAX_ROWS / 256 }, limits)).toBe(true)
    expect(groupFusedApplies({ ...p, padded: true, experts: 256, width: GROUP_FUSED_MAX_ROWS / 256 + 1 }, limits)).toBe(false)
    expect(groupFusedApplies(p, { maxStorageBuffersPerShaderStage: 8 })).toBe(false)
    expect(() => groupFusedProgram().getRunData({ ...p, tokens: GROUP_FUSED_MAX_PAIRS })).toThrow(RangeError)
  })
})
