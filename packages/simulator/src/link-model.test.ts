import { contiguousPlacement, createRouting } from '@moe-route/core'
import { describe, expect, it } from 'vitest'
import { H100_HF_GROUPED_MM } from './calibration/default.js'
import { checkCalibration, costModelFromCalibration, fitCalibration, predictCall, type Calibration } from './cost-model.js'
import { evaluateRouting } from './expert-parallel.js'
import { allToAllMs, fitLinkModel, linkModelFor, NVLINK4_H100, predictLinkMs, type LinkCalibrationPoint } from './link-model.js'

const points = (truth: { bandwidth: number; latencyMs: number }, devices: number, calls = 2): LinkCalibrationPoint[] =>
  [1e5, 1e6, 8e6, 3.2e7].map((bytes) => ({ devices, calls, bytes, ms: predictLinkMs(truth, { calls, bytes }) }))

describe('link model fit', () => {
  it('recovers bandwidth and latency from exact points, and predicts each point', () => {
    const truth = { bandwidth: 2.3e11, latencyMs: 0.021 }
    const fit = fitLinkModel({ name: 'synthetic', points: points(truth, 4) })
    expect(fit.bandwidth / truth.bandwidth).toBeCloseTo(1, 2)
    expect(fit.latencyMs).toBeCloseTo(truth.latencyMs, 3)
    for (const p of fit.points!) expect(Math.abs(p.predictedMs! - p.ms) / p.ms).toBeLessThan(0.01)
    // allToAllMs (what the simulator runs) agrees with the point model for one call
    expect(allToAllMs(fit, [4e6, 0], [0, 4e6])).toBeCloseTo(predictLinkMs(fit, { calls: 1, bytes: 4e6 }), 9)
  })

  it('fits each device count on its own when asked, and linkModelFor picks that fit', () => {
    const two = { bandwidth: 3e11, latencyMs: 0.012 }
    const eight = { bandwidth: 1.5e11, latencyMs: 0.05 }
    const fit = fitLinkModel({ name: 'nccl', points: [...points(two, 2), ...points(eight, 8)], perDevices: true })
    expect(fit.perDevices!.map((f) => f.devices)).toEqual([2, 8])
    const m8 = linkModelFor(fit, 8)
    expect(m8.bandwidth / eight.bandwidth).toBeCloseTo(1, 2)
    expect(m8.latencyMs).toBeCloseTo(eight.latencyMs, 3)
    expect(m8.name).toMatch(/8 devices/)
    // no fit for 4 devices: the overall one
    expect(linkModelFor(fit, 4)).toBe(fit)
    // a plain link model passes through
    expect(linkModelFor(NVLINK4_H100, 8)).toBe(NVLINK4_H100)
  })

  it('clips a negative latency at 0 and skips device counts with one byte count', () => {
    // times that grow faster than the bytes: the best line has a negative intercept, clipped to 0
    const pts = [{ devices: 2, calls: 2, bytes: 1e6, ms: 0.002 }, { devices: 2, calls: 2, bytes: 1e7, ms: 0.1 }]
    expect(fitLinkModel({ name: 't', points: pts }).latencyMs).toBe(0)
    const fit = fitLinkModel({ name: 't', points: [...pts, { devices: 4, calls: 2, bytes: 1e6, ms: 0.05 }], perDevices: true })
    expect(fit.perDevices!.map((f) => f.devices)).toEqual([2])
  })

  it('rejects points and links it cannot use, with a coded error', () => {
    expect(() => fitLinkModel({ name: 't', points: [] })).toThrow(/at least one/)
    expect(() => fitLinkModel({ name: 't', points: [{ devices: 1, calls: 2, bytes: 1, ms: 1 }] })).toThrow(expect.objectContaining({ code: 'MOE_ROUTE_ERR_INPUT_INVALID' }))
    expect(() => fitLinkModel({ name: 't', points: [{ devices: 2, calls: 2, bytes: 1, ms: 0 }] })).toThrow(/ms > 0/)
    expect(() => linkModelFor({ name: 'x', bandwidth: 1e9, latencyMs: 0, perDevices: [{ devices: 1, bandwidth: 1, latencyMs: 0 }] } as never, 2)).toThrow(/perDevices\[0\]/)
  })
})

describe('calibration with a link', () => {
  const link = fitLinkModel({ name: 'nccl', points: points({ bandwidth: 2e11, latencyMs: 0.02 }, 2), perDevices: true })

  it('old calibrations (no link, no expertRows) stay valid and predict as before', () => {
    expect(() => checkCalibration(H100_HF_GROUPED_MM)).not.toThrow()
    expect(H100_HF_GROUPED_MM.link).toBeUndefined()
    for (const p of H100_HF_GROUPED_MM.points) expect(predictCall(H100_HF_GROUPED_MM, p)).toBeCloseTo(p.predictedMs!, 3)
  })

  it('fits from points with exact per-expert rows and keeps the link', () => {
    const shape = { hidden: 512, intermediate: 1024, topK: 2 }
    const truth = { shape, bytesPerWeight: 2, weightBandwidth: 1e12, flops: 3e14, callOverheadMs: 0.05 }
    const rowsList = [[8000, 1, 0, 1, 1], [16000, 8000], [1, 1, 1, 1], [30000, 0, 0, 0]]
    const pts = rowsList.map((expertRows) => {
      const activeExperts = expertRows.filter((r) => r > 0).length
      const tokens = expertRows.reduce((a, b) => a + b, 0) / shape.topK
      return { tokens, activeExperts, expertRows, ms: predictCall(truth, { tokens, activeExperts, expertRows }) }
    })
    // uneven rows: the even-spread prediction differs from the exact one
    expect(Math.abs(predictCall(truth, { ...pts[0], expertRows: undefined }) - pts[0].ms) / pts[0].ms).toBeGreaterThan(0.03)
    const cal: Calibration = fitCalibration({ device: 'synthetic', provenance: 'test', shape, bytesPerWeight: 2, weightBandwidth: 1e12, points: pts, link })
    expect(cal.flops / 3e14).toBeCloseTo(1, 2)
    expect(cal.callOverheadMs).toBeCloseTo(0.05, 3)
    expect(cal.points[0].expertRows).toEqual([8000, 1, 0, 1, 1])
    for (const p of cal.points) expect(Math.abs(p.predictedMs! - p.ms) / p.ms).toBeLessThan(0.01)
    expect(cal.link).toEqual(link)
    const json = JSON.parse(JSON.stringify(cal)) as Calibration
    expect(() => checkCalibration(json)).not.toThrow()
    expect(() => costModelFromCalibration(json)).not.toThrow()
    expect(() => checkCalibration({ ...json, link: { ...link, bandwidth: 0 } })).toThrow(/bandwidth > 0/)
    expect(() => fitCalibration({ device: 'd', provenance: 'p', shape, bytesPerWeight: 2, weightBandwidth: 1e12, points: [{ tokens: 1, activeExperts: 1, ms: 1, expertRows: [0] }] })).toThrow(/expertRows/)
  })

  it('the simulator times an all-to-all with the fitted link for that device count', () => {
    const r = createRouting({ tokens: 2, experts: 2, topK: 1, expertIds: Int32Array.from([1, 0]), weights: Float32Array.from([1, 1]), scores: new Float32Array(4).fill(0.5), normalizeTopK: true })
    const shape = { experts: 2, topK: 1, hidden: 1000, intermediate: 10, normalizeTopK: true }
    const c = evaluateRouting(r, { placement: contiguousPlacement(2, 2), shape, cost: costModelFromCalibration(H100_HF_GROUPED_MM), link: linkModelFor(link, 2), activationBytes: 2 })
    // each device sends its one token (2000 bytes) to the other
    expect(c.dispatchMs).toBeCloseTo(predictLinkMs(link.perDevices![0], { calls: 1, bytes: 2000 }), 9)
  })
})
