import { describe, expect, it } from 'vitest'
import { parse as parseYaml } from 'yaml'
import { rebalanceExperts } from './eplb.js'
import { readEnginePlacement, spreadReplicas, writeEnginePlacement, type EngineFormat } from './engine-formats.js'
import { balancedness, engineMetrics, imbalanceRatio, quantile, utilizationRate } from './engine-metrics.js'

const loads = [
  [90, 10, 10, 10, 40, 20, 30, 10],
  [10, 10, 80, 10, 10, 50, 10, 20],
]
const eplb = rebalanceExperts(loads, { numReplicas: 12, numGroups: 1, numNodes: 1, numGpus: 4 })
const spread = eplb.phy2log.map((row, i) => spreadReplicas(row, 4, loads[i]).row)
const placed = { layers: [3, 7], gpus: 4, experts: 8, phy2log: spread }

describe('engine placement files', () => {
  it.each(['sglang', 'vllm', 'trtllm', 'eplb', 'moe-route'] as EngineFormat[])('%s round-trips', (format) => {
    const text = writeEnginePlacement(placed, format)
    const back = readEnginePlacement(text, { gpus: 4, file: `p.${format}` })
    expect(back.format).toBe(format)
    expect(back.phy2log).toEqual(spread)
    expect(back.gpus).toBe(4)
    if (format === 'trtllm' || format === 'moe-route') expect(back.layers).toEqual([3, 7])
  })

  it('SGLang: physical_to_logical_map is the only key (init_by_mapping takes the dict as kwargs)', () => {
    const doc = JSON.parse(writeEnginePlacement(placed, 'sglang'))
    expect(Object.keys(doc)).toEqual(['physical_to_logical_map'])
    expect(doc.physical_to_logical_map).toHaveLength(2)
    const count = JSON.parse(writeEnginePlacement(placed, 'sglang-count', loads))
    expect(count).toEqual({ logical_count: loads })
  })

  it('TensorRT-LLM: the three MoeLoadBalancerConfig keys, integer layer keys, num_slots-long lists', () => {
    const text = writeEnginePlacement(placed, 'trtllm')
    const doc = parseYaml(text)
    expect(Object.keys(doc).sort()).toEqual(['initial_global_assignments', 'layer_updates_per_iter', 'num_slots'])
    expect(doc.num_slots).toBe(12)
    expect(text).toMatch(/^ {2}3: \[/m)
    expect(doc.initial_global_assignments[3]).toEqual(spread[0])
    expect(doc.initial_global_assignments[7]).toHaveLength(12)
  })

  it('vLLM: one device_expert list per device, rectangular, no expert twice on a device', () => {
    const doc = JSON.parse(writeEnginePlacement(placed, 'vllm'))
    expect(doc.moe_layer_count).toBe(2)
    for (const layer of doc.layer_list) {
      expect(layer.device_count).toBe(4)
      for (const d of layer.device_list) expect(new Set(d.device_expert).size).toBe(3)
    }
    const twice = { layers: [0], gpus: 2, experts: 3, phy2log: [[0, 0, 1, 2]] }
    expect(() => writeEnginePlacement(twice, 'vllm')).toThrow(/two replicas/)
    const fixed = spreadReplicas([0, 0, 1, 2], 2, [10, 1, 1])
    expect(fixed.swaps).toBe(1)
    expect(() => writeEnginePlacement({ ...twice, phy2log: [fixed.row] }, 'vllm')).not.toThrow()
  })

  it.each([
    ['{"physical_to_logical_map": [[0,1]], "extra": 1}', /unknown key "extra"/],
    ['num_slots: 4\ninitial_global_assignments:\n  0: [0, 1, 2]\n', /has 3 slots, num_slots is 4/],
    ['{"logical_count": [[1,2]]}', /not a placement/],
    ['{"phy2log": [[0, 1, 3]], "numGpus": 3}', /no slot for expert 2/],
    ['{"phy2log": [[0, 1, 2]]', /not valid JSON/],
  ])('refuses %s', (text, re) => {
    expect(() => readEnginePlacement(text, { gpus: 2, file: 'bad' })).toThrow(re)
  })

  it('SGLang and TensorRT-LLM files need the GPU count', () => {
    expect(() => readEnginePlacement('{"physical_to_logical_map": [[0,1]]}')).toThrow(/--devices/)
  })
})

describe('engine metrics', () => {
  it('computes each engine definition', () => {
    expect(balancedness([10, 20, 30, 40])).toBeCloseTo(25 / 40)
    expect(imbalanceRatio([10, 20, 30, 40])).toBeCloseTo((40 - 25) / 25)
    expect(utilizationRate([0, 0])).toBeCloseTo(1)
    expect(quantile([1, 2, 3, 4, 5], 0.1)).toBeCloseTo(1.4)
  })

  it('splits replicated experts over their slots and summarises over layers', () => {
    const m = engineMetrics([3, 7], loads, spread, 4)
    const contiguous = engineMetrics([3, 7], loads, [[0, 1, 2, 3, 4, 5, 6, 7]], 4)
    expect(m.vllm.avg).toBeGreaterThan(contiguous.vllm.avg)
    expect(m.trtllm.avg).toBeLessThan(contiguous.trtllm.avg)
    expect(contiguous.vllm.balancedness[0]).toBeCloseTo(55 / 100) // ranks 100, 20, 60, 40
    expect(m.vllm.min).toBe(Math.min(...m.vllm.balancedness))
  })
})
