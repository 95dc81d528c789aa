import { contiguousPlacement, mulberry32, pairsOf, topKIndices, type PolicyContext, type Routing } from '@moe-route/core'
import { capacityOf, scopeGroups } from '../shared/index.js'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { caseArb, expectAccounting, pairKeys, permutation, permuteTokens } from '../../test/arbitraries.js'
import { createExpandedDrop, type ExpandedDropOptions } from './index.js'

const optionsArb: fc.Arbitrary<ExpandedDropOptions> = fc.record({
  capacityFactor: fc.constantFrom(0.25, 0.5, 1, 1.5, 2),
  rounding: fc.constantFrom('ceil', 'floor', 'round'),
  candidates: fc.constantFrom('local', 'global-topM', 'all'),
  overselectionRatio: fc.constantFrom(1, 1.5, 2, 3),
  localExperts: fc.constant(null),
  maxExpertsPerToken: fc.constantFrom(null, 1, 2, 3),
  weights: fc.constant('score'),
  applyToDecode: fc.boolean(),
  scope: fc.constantFrom('global', 'per-source-device'),
})

const ctxFor = (r: Routing, devices: number, seed = 1): PolicyContext => ({ placement: contiguousPlacement(r.experts, devices), batchId: 0, random: mulberry32(seed) })

/** The candidate set of each token, recomputed independently of the implementation. */
function candidateSets(r: Routing, o: ExpandedDropOptions, devices: number): Set<number>[] {
  const placement = contiguousPlacement(r.experts, devices)
  return Array.from({ length: r.tokens }, (_, t) => {
    const set = new Set(pairsOf(r).filter((p) => p.token === t).map((p) => p.expert))
    if (o.candidates === 'all') for (let e = 0; e < r.experts; e++) set.add(e)
    else if (o.candidates === 'global-topM') {
      const M = Math.min(r.experts, Math.ceil(r.topK * o.overselectionRatio))
      const idx = new Int32Array(M)
      topKIndices(r.scores, t * r.experts, r.experts, M, idx)
      idx.forEach((e) => set.add(e))
    } else {
      const d = r.sourceDevice ? r.sourceDevice[t] : 0
      placement.replicas.forEach((reps, e) => reps.includes(d) && set.add(e))
    }
    return set
  })
}

describe('expanded-drop: properties', () => {
  const multi = caseArb({ minDevices: 2 })

  it('capacity holds per expert and scope group; kept pairs are candidates; weights are raw scores', () => {
    fc.assert(
      fc.property(multi, optionsArb, ({ routing, devices }, o) => {
        const out = createExpandedDrop(o).apply(routing, ctxFor(routing, devices))
        const cands = candidateSets(routing, o, devices)
        for (const p of pairsOf(out.routing)) {
          expect(cands[p.token].has(p.expert)).toBe(true)
          expect(p.weight).toBe(routing.scores[p.token * routing.experts + p.expert])
        }
        for (const g of scopeGroups(routing, o.scope)) {
          const C = capacityOf(o.capacityFactor, g.tokens.length, routing.topK, routing.experts, o.rounding)
          const load = new Array(routing.experts).fill(0)
          const inGroup = new Set(g.tokens)
          for (const p of pairsOf(out.routing)) if (inGroup.has(p.token)) load[p.expert]++
          for (const l of load) expect(l).toBeLessThanOrEqual(C)
        }
        if (o.maxExpertsPerToken !== null) {
          const per = new Array(routing.tokens).fill(0)
          for (const p of pairsOf(out.routing)) per[p.token]++
          for (const n of per) expect(n).toBeLessThanOrEqual(o.maxExpertsPerToken)
        }
      }),
    )
  })

  it('without a per-token cap, each expert keeps exactly its min(C, candidates) best-scoring candidates', () => {
    fc.assert(
      fc.property(multi, optionsArb, ({ routing, devices }, o0) => {
        const o = { ...o0, maxExpertsPerToken: null, scope: 'global' as const }
        const out = createExpandedDrop(o).apply(routing, ctxFor(routing, devices))
        const cands = candidateSets(routing, o, devices)
        const C = capacityOf(o.capacityFactor, routing.tokens, routing.topK, routing.experts, o.rounding)
        const keptSet = new Set(pairKeys(out.routing))
        for (let e = 0; e < routing.experts; e++) {
          const atE = cands.flatMap((s, t) => (s.has(e) ? [t] : []))
          const keptAtE = atE.filter((t) => keptSet.has(`${t}:${e}`))
          expect(keptAtE.length).toBe(Math.min(C, atE.length))
          const score = (t: number) => routing.scores[t * routing.experts + e]
          const worstKept = Math.min(...keptAtE.map(score))
          for (const t of atE) if (!keptSet.has(`${t}:${e}`)) expect(score(t)).toBeLessThanOrEqual(worstKept)
        }
      }),
    )
  })

  it('every input pair is kept or reported dropped; every new pair is reported added', () => {
    fc.assert(
      fc.property(multi, optionsArb, ({ routing, devices }, o) => {
        expectAccounting(routing, createExpandedDrop(o).apply(routing, ctxFor(routing, devices)), 'expanded-drop')
      }),
    )
  })

  it('does not depend on batch order: permuting tokens permutes the result', () => {
    fc.assert(
      fc.property(caseArb({ minDevices: 2, distinct: true }), optionsArb, fc.integer(), ({ routing, devices }, o, pseed) => {
        const perm = permutation(routing.tokens, pseed)
        const a = createExpandedDrop(o).apply(routing, ctxFor(routing, devices))
        const b = createExpandedDrop(o).apply(permuteTokens(routing, perm), ctxFor(routing, devices))
        expect(pairsOf(b.routing).map((p) => `${perm[p.token]}:${p.expert}`).sort()).toEqual(pairKeys(a.routing))
      }),
    )
  })

  it('is deterministic', () => {
    fc.assert(
      fc.property(multi, optionsArb, ({ routing, devices }, o) => {
        expect(createExpandedDrop(o).apply(routing, ctxFor(routing, devices))).toEqual(createExpandedDrop(o).apply(routing, ctxFor(routing, devices)))
      }),
    )
  })
})
