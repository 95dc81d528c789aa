import { describe, expect, it } from 'vitest'
import { balancedness, maxOverMean } from '../routing/routing.js'
import type { BatchTelemetry } from '../types.js'
import { TelemetryAggregate } from './telemetry.js'

const batch = (loadBefore: number[], loadAfter: number[]): BatchTelemetry =>
  ({
    batchId: 0, tokens: 4, pairsBefore: 8, pairsAfter: 8, loadBefore, loadAfter,
    maxMeanBefore: maxOverMean(loadBefore), maxMeanAfter: maxOverMean(loadAfter),
    droppedPairs: 0, droppedFraction: 0, reroutedPairs: 0, addedPairs: 0, gateMassKept: 1, tokensFullyDropped: 0,
    policies: [], dispatch: { mode: 'dynamic', slotsComputed: 8, paddingRows: 0, bytesCrossDevice: 0, capacity: null },
    timings: { gateMs: 0, routeMs: 0, policiesMs: 0, dispatchMs: 0, storeMs: 0, expertsMs: 0, totalMs: 1 },
  }) as BatchTelemetry

describe('balancedness (vLLM: mean load / max load)', () => {
  it('is 1 when balanced, 1/E when one expert takes everything, 0 when nothing ran', () => {
    expect(balancedness([2, 2, 2, 2])).toBe(1)
    expect(balancedness([8, 0, 0, 0])).toBe(0.25)
    expect(balancedness([3, 1, 2, 2])).toBeCloseTo(2 / 3)
    expect(balancedness([0, 0, 0])).toBe(0)
    expect(balancedness([])).toBe(0)
  })

  it('is averaged per batch and its worst batch kept by TelemetryAggregate', () => {
    const s = new TelemetryAggregate().add(batch([8, 0, 0, 0], [2, 2, 2, 2])).add(batch([3, 1, 2, 2], [4, 0, 2, 2])).summary()
    expect(s.balancedness.before.mean).toBeCloseTo((0.25 + 2 / 3) / 2)
    expect(s.balancedness.before.min).toBe(0.25)
    expect(s.balancedness.after.mean).toBeCloseTo((1 + 0.5) / 2)
    expect(s.balancedness.after.min).toBe(0.5)
    expect(new TelemetryAggregate().summary().balancedness.after).toEqual({ mean: 0, min: 0 })
  })
})

describe('TelemetryAggregate: dispatcher and store', () => {
  const withDispatch = (d: Partial<BatchTelemetry['dispatch']>, store?: BatchTelemetry['store']): BatchTelemetry =>
    ({ ...batch([2, 2, 2, 2], [2, 2, 2, 2]), dispatch: { ...batch([], []).dispatch, ...d }, ...(store ? { store } : {}) }) as BatchTelemetry

  it('sums slots, padding, overflow drops and crossing bytes, and computes the waste factor', () => {
    const s = new TelemetryAggregate()
      .add(withDispatch({ mode: 'static', slotsComputed: 16, paddingRows: 10, bytesCrossDevice: 100, capacity: 4, droppedPairs: 2 }))
      .add(withDispatch({ mode: 'static', slotsComputed: 16, paddingRows: 8, bytesCrossDevice: 50, capacity: 4, droppedPairs: 0 }))
      .summary()
    // asked = (16 - 10 + 2) + (16 - 8 + 0) = 16 pairs for 32 slots
    expect(s.dispatch).toEqual({ mode: 'static', slots: 32, paddingRows: 18, wasteFactor: 2, droppedPairs: 2, bytesCrossDevice: 150, capacity: 4 })
  })

  it('reports unknown overflow as null and exact groups with waste factor 1', () => {
    const s = new TelemetryAggregate().add(withDispatch({ slotsComputed: 8, paddingRows: 0 })).summary()
    expect(s.dispatch.droppedPairs).toBeNull()
    expect(s.dispatch.wasteFactor).toBe(1)
    expect(s.dispatch.capacity).toBeNull()
  })

  it('adds evictions and upload time to the store totals', () => {
    const store = { hits: 3, misses: 1, evictions: 1, bytesUploaded: 1024, uploadMs: 2.5, resident: 4, bypassed: false }
    const s = new TelemetryAggregate().add(withDispatch({}, store)).add(withDispatch({}, store)).summary()
    expect(s.store).toEqual({ hits: 6, misses: 2, hitRate: 0.75, evictions: 2, bytesUploaded: 2048, uploadMs: 5 })
  })
})
