import { describe, expect, it } from 'vitest'
import { checkConfig } from './config/validate.js'
import { createMoe } from './container.js'
import { definePolicy } from './plugin/define.js'
import { checkMemory, checkSize, estimateRunMemory, formatBytes } from './limits.js'
import { softmaxTopK } from './builtins/softmax-top-k.js'
import { expertCapacity } from './routing/routing.js'
import { maxOf, minOf, pushAll } from './util/reduce.js'

describe('sizes and memory', () => {
  it('estimates a run and refuses one over budget with the estimate and the formula', () => {
    const m = estimateRunMemory({ experts: 8, topK: 2, hidden: 4096, intermediate: 14336 }, { tokensPerBatch: 512, batchesHeld: 5, hostWeights: true })
    expect(m.parts[0].bytes).toBe(8 * (3 * 4096 * 14336 + 4096) * 4)
    expect(() => checkMemory(m, m.bytes, 'run')).not.toThrow()
    expect(() => checkMemory(m, 2 ** 30, 'run of x.json')).toThrow(/^run of x\.json needs about 5\.9 GiB of memory \(layer weights \(f32\) 5\.3 GiB \(E·\(3·H·I \+ H\)·4 B\) \+ 5 batch\(es\) held .*\), more than the 1\.0 GiB available/)
    expect(formatBytes(512)).toBe('512 B')
    expect(() => checkSize(2 ** 40, 'experts', 65536)).toThrow(/experts is 1099511627776, more than the largest supported \(65536\)/)
    expect(() => checkSize(1.5, 'experts', 65536)).toThrow(/must be an integer/)
  })

  it('the config schema bounds every size', () => {
    const model = { experts: 8, topK: 2, hidden: 64, intermediate: 128 }
    const paths = (raw: unknown) => checkConfig(raw).issues.map((i) => i.path).sort()
    expect(paths({ model: { ...model, hidden: 1e9, intermediate: 1e9 } })).toEqual(['/model/hidden', '/model/intermediate'])
    expect(paths({ model, workload: { source: 'x', tokensPerBatch: 1e15, batches: 2 ** 53 }, stream: { capacity: 1e9 } })).toEqual(['/stream/capacity', '/workload/batches', '/workload/tokensPerBatch'])
    expect(paths({ model, seed: Number.POSITIVE_INFINITY })).toEqual(['/seed'])
  })

  it('streaming reductions take arrays far beyond the argument limit', () => {
    const big = Float64Array.from({ length: 300_000 }, (_, i) => (i * 7919) % 300_001)
    let max = -Infinity
    for (const v of big) if (v > max) max = v
    expect(maxOf(big)).toBe(max)
    expect(maxOf(Array.from(big))).toBe(max)
    expect(maxOf([])).toBe(-Infinity)
    expect(maxOf([], 0)).toBe(0)
    expect(minOf([3, NaN, 1])).toBe(1)
    expect(pushAll([0], new Array(300_000).fill(1)).length).toBe(300_001)
  })
})

describe('the documented capacity, for every γ > 0', () => {
  it('ceil(γ·k·T/E) is at least 1 for any γ > 0, float noise snapped, never Infinity in the schema range', () => {
    expect(expertCapacity(1e-300, 8, 2, 8)).toBe(1)
    expect(expertCapacity(Number.MIN_VALUE, 1, 1, 65536)).toBe(1)
    expect(expertCapacity(1.5, 512, 2, 8)).toBe(192)
    expect(expertCapacity(1.1, 10, 2, 22)).toBe(1)
    expect(expertCapacity(1e-300, 8, 2, 8, 'floor')).toBe(0)
    expect(expertCapacity(1e-300, 0, 2, 8)).toBe(0)
    expect(Number.isFinite(expertCapacity(1e6, 1 << 20, 256, 1))).toBe(true)
  })
})

describe('routed pairs carry weight', () => {
  it('the router leaves out a pick whose f32 weight underflows, with or without renormalisation', () => {
    const logits = new Float32Array([0, -200, -300, -300, 0, 0, -1, -1])
    for (const normalize of [false, true]) {
      const r = softmaxTopK({ tokens: 2, experts: 4, logits }, 2, normalize)
      expect(Array.from(r.expertIds)).toEqual([0, -1, 0, 1])
      expect(r.weights[1]).toBe(0)
      expect(r.weights[0]).toBeGreaterThan(0.99)
    }
  })

  it('negative scores are refused by the engine and the router (INPUT_INVALID naming token and expert)', () => {
    const engine = createMoe({ config: { model: { experts: 2, topK: 1, hidden: 1, intermediate: 1 } } })
    expect(() => engine.route({ id: 3, tokens: 1, scores: new Float32Array([0.5, -0.1]) })).toThrow(/negative score \(-0\.1\d*\) at token 0, expert 1/)
  })

  it("a plugin's output is checked before the next stage uses it (PLUGIN_FAILED naming plugin and hook)", () => {
    const liar = definePolicy({
      meta: { name: 'liar', package: 'x', version: '1.0.0', core: '^0.1.0', schema: { type: 'object' }, defaultOptions: {} },
      create: () => ({ name: 'liar', apply: (routing) => ({ routing: { ...routing, expertIds: routing.expertIds.map(() => 99) }, dropped: [] }) }),
    })
    const engine = createMoe({ config: { model: { experts: 2, topK: 1, hidden: 1, intermediate: 1 }, policies: [{ use: 'liar' }] }, plugins: [liar] })
    expect(() => engine.route({ id: 0, tokens: 1, scores: new Float32Array([0.5, 0.5]) })).toThrow(/plugin liar returned a bad routing from apply: expert id 99 at token 0 is outside -1 … 1/)
  })
})
