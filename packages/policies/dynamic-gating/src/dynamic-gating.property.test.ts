import { contiguousPlacement, createRouting, forEachPair, type Routing } from '@moe-route/core'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { dynamicDispatch } from './dynamic-dispatch.js'
import { staticDispatch } from './static-dispatch.js'

interface Case {
  routing: Routing
  devices: number
}

/** Arbitrary routings: duplicates and empty slots allowed, optional source devices. */
const cases: fc.Arbitrary<Case> = fc
  .record({
    tokens: fc.integer({ min: 0, max: 40 }),
    experts: fc.integer({ min: 1, max: 12 }),
    slots: fc.integer({ min: 1, max: 4 }),
    devices: fc.integer({ min: 1, max: 4 }),
    withSource: fc.boolean(),
    seed: fc.integer(),
  })
  .chain(({ tokens, experts, slots, devices, withSource }) =>
    fc.record({
      ids: fc.array(fc.integer({ min: -1, max: experts - 1 }), { minLength: tokens * slots, maxLength: tokens * slots }),
      weights: fc.array(fc.float({ min: 0, max: 1, noNaN: true }), { minLength: tokens * slots, maxLength: tokens * slots }),
      src: fc.array(fc.integer({ min: 0, max: devices - 1 }), { minLength: tokens, maxLength: tokens }),
      tokens: fc.constant(tokens),
      experts: fc.constant(experts),
      slots: fc.constant(slots),
      devices: fc.constant(devices),
      withSource: fc.constant(withSource),
    }),
  )
  .map(({ ids, weights, src, tokens, experts, slots, devices, withSource }) => ({
    devices,
    routing: createRouting({
      tokens,
      experts,
      topK: Math.min(slots, experts),
      slots,
      expertIds: Int32Array.from(ids),
      weights: Float32Array.from(weights),
      scores: new Float32Array(tokens * experts),
      normalizeTopK: false,
      ...(withSource ? { sourceDevice: Int32Array.from(src) } : {}),
    }),
  }))

const pairKey = (t: number, e: number, w: number) => `${t}:${e}:${w}`

describe('dynamic gating properties', () => {
  it('keeps every pair exactly once, grouped by expert, stable in token order', () => {
    fc.assert(
      fc.property(cases, ({ routing, devices }) => {
        const plan = dynamicDispatch(routing, { placement: contiguousPlacement(routing.experts, devices), bytesPerToken: 3 })
        const want: string[] = []
        forEachPair(routing, (t, e, w) => want.push(pairKey(t, e, w)))
        const got: string[] = []
        expect(plan.offsets[0]).toBe(0)
        for (let e = 0; e < routing.experts; e++) {
          expect(plan.offsets[e + 1] - plan.offsets[e]).toBe(plan.counts[e])
          for (let r = plan.offsets[e]; r < plan.offsets[e + 1]; r++) {
            got.push(pairKey(plan.rowToken[r], e, plan.rowWeight[r]))
            if (r > plan.offsets[e]) expect(plan.rowToken[r]).toBeGreaterThanOrEqual(plan.rowToken[r - 1])
          }
        }
        expect(plan.offsets[routing.experts]).toBe(plan.rowToken.length)
        expect(got.sort()).toEqual(want.sort())
        expect(plan.pairs).toBe(want.length)
        // every pair travels exactly once (per-pair copies)
        expect(plan.exchange.payloadRows.reduce((a, b) => a + b, 0)).toBe(want.length)
      }),
      { numRuns: 300 },
    )
  })
})

describe('static gating properties', () => {
  it('keeps min(count, cap) per (source, expert), the first ones in token order; pads the rest', () => {
    fc.assert(
      fc.property(cases, fc.double({ min: 0.01, max: 1.5, noNaN: true }), fc.constantFrom<'token' | 'choice'>('token', 'choice'), ({ routing, devices }, factor, priority) => {
        const placement = contiguousPlacement(routing.experts, devices)
        const plan = staticDispatch(routing, { placement, bytesPerToken: 3 }, { capacityFactor: factor, priority })
        const cap = plan.capacityPerSource!
        const segs = plan.segments
        expect(plan.capacity).toBe(segs * cap)
        // pairs in claim order per (segment, expert)
        const queue = new Map<string, string[]>()
        const order: [number, number][] = []
        if (priority === 'token') for (let t = 0; t < routing.tokens; t++) for (let j = 0; j < routing.slots; j++) order.push([t, j])
        else for (let j = 0; j < routing.slots; j++) for (let t = 0; t < routing.tokens; t++) order.push([t, j])
        for (const [t, j] of order) {
          const e = routing.expertIds[t * routing.slots + j]
          if (e < 0) continue
          const seg = routing.sourceDevice ? routing.sourceDevice[t] : 0
          const k = `${seg}/${e}`
          if (!queue.has(k)) queue.set(k, [])
          queue.get(k)!.push(pairKey(t, e, routing.weights[t * routing.slots + j]))
        }
        let kept = 0
        let dropped = 0
        for (let e = 0; e < routing.experts; e++) {
          expect(plan.offsets[e + 1] - plan.offsets[e]).toBe(segs * cap)
          for (let s = 0; s < segs; s++) {
            const all = queue.get(`${s}/${e}`) ?? []
            const n = Math.min(all.length, cap)
            const base = plan.offsets[e] + s * cap
            const got: string[] = []
            for (let r = 0; r < cap; r++) {
              const t = plan.rowToken[base + r]
              if (r < n) got.push(pairKey(t, e, plan.rowWeight[base + r]))
              else {
                expect(t).toBe(-1)
                expect(plan.rowWeight[base + r]).toBe(0)
              }
            }
            expect(got).toEqual(all.slice(0, n))
            kept += n
            dropped += all.length - n
          }
        }
        expect(plan.counts.reduce((a, b) => a + b, 0)).toBe(kept)
        expect(plan.dropped.length).toBe(dropped)
        expect(plan.paddingRows).toBe(routing.experts * segs * cap - kept)
        for (let i = 1; i < plan.dropped.length; i++) expect(plan.dropped[i].token).toBeGreaterThanOrEqual(plan.dropped[i - 1].token)
        // E·cap slots per segment are sent, padding included
        expect(plan.traffic.sendRows.reduce((a, b) => a + b, 0)).toBe(routing.experts * segs * cap)
      }),
      { numRuns: 300 },
    )
  })

  it('with capacity for everything, keeps the same pairs in the same order as dynamic gating', () => {
    fc.assert(
      fc.property(cases, ({ routing, devices }) => {
        const ctx = { placement: contiguousPlacement(routing.experts, devices), bytesPerToken: 1 }
        // cap = S per segment ≥ any expert's pairs from one device unless a token repeats an expert
        const s = staticDispatch(routing, ctx, { capacityFactor: routing.slots })
        const d = dynamicDispatch(routing, ctx)
        expect(s.dropped).toEqual([])
        for (let e = 0; e < routing.experts; e++) {
          const real: number[] = []
          for (let r = s.offsets[e]; r < s.offsets[e + 1]; r++) if (s.rowToken[r] >= 0) real.push(s.rowToken[r])
          expect(real.sort((a, b) => a - b)).toEqual([...d.rowToken.subarray(d.offsets[e], d.offsets[e + 1])])
        }
      }),
      { numRuns: 200 },
    )
  })
})
