import { contiguousPlacement, createRouting, mulberry32, type ModelShape } from '@moe-route/core'
import { describe, expect, it } from 'vitest'
import { niceTicks, renderReport } from './report.js'
import { createSimulator } from './simulator.js'

const model: ModelShape = { name: 'olmoe-like', experts: 16, topK: 2, hidden: 64, intermediate: 32, normalizeTopK: false }

/** A run on 4 devices where device 0 gets more than its share. */
function result() {
  const sim = createSimulator({ model, placement: contiguousPlacement(16, 4), seed: 1 })
  const rnd = mulberry32(3)
  for (let b = 0; b < 12; b++) {
    const T = 64
    const ids = new Int32Array(T * 2)
    const w = new Float32Array(T * 2).fill(0.5)
    for (let t = 0; t < T; t++) {
      ids[2 * t] = rnd() < 0.5 ? Math.floor(rnd() * 4) : Math.floor(rnd() * 16) // experts 0-3 live on device 0
      ids[2 * t + 1] = (ids[2 * t] + 1 + Math.floor(rnd() * 15)) % 16
    }
    sim.step(createRouting({ tokens: T, experts: 16, topK: 2, expertIds: ids, weights: w, scores: new Float32Array(T * 16).fill(1 / 16), normalizeTopK: false }))
  }
  return sim.result()
}

describe('HTML report', () => {
  const html = renderReport(result(), 'test run')

  it('labels devices and batches, and has axes titles and legends', () => {
    for (const d of ['d0', 'd1', 'd2', 'd3']) expect(html).toContain(`>${d}</text>`)
    for (const t of ['>batch</text>', '>device</text>', '>layer latency (ms)</text>', '>batches</text>', '>devices per token (C_T)</text>', '>policy stack</text>', '>baseline</text>', '>share of rows</text>']) expect(html).toContain(t)
  })

  it('colours the heatmap on a diverging scale around the ideal share 1/D', () => {
    expect(html).toContain('25.00% (ideal)')
    // the overloaded device is red, some other device is blue
    const fills = [...html.matchAll(/<rect [^>]*fill="rgb\((\d+),(\d+),(\d+)\)"><title>batch \d+, device d(\d)/g)]
    const red = fills.filter(([, r, , b]) => Number(r) > Number(b))
    const blue = fills.filter(([, r, , b]) => Number(b) > Number(r))
    expect(red.some((m) => m[4] === '0')).toBe(true)
    expect(blue.length).toBeGreaterThan(0)
  })

  it('prints percentages as the terminal does and names the layer simulated', () => {
    expect(html).toMatch(/<td>dropped pairs<\/td><td>\d+\.\d\d%<\/td>/)
    expect(html).toContain('<td>layer simulated</td><td>olmoe-like: E 16, top-2, H 64, I 32</td>')
    expect(html).toMatch(/<td>cost model calibrated on<\/td><td>[^<]*\(scaled to the layer simulated/)
  })

  it('picks round tick values', () => {
    expect(niceTicks(0, 10, 5)).toEqual([0, 2, 4, 6, 8, 10])
    expect(niceTicks(0.607, 0.667, 6)).toEqual([0.61, 0.62, 0.63, 0.64, 0.65, 0.66])
    expect(niceTicks(4.9, 5.4, 5)).toEqual([4.9, 5, 5.1, 5.2, 5.3, 5.4])
  })
})
