/**
 * Engine interop end to end through the CLI: every shared fixture (written by torch, numpy and
 * safetensors) through trace stats, cache, simulate and placement; placement files for SGLang,
 * vLLM and TensorRT-LLM checked against the layouts the engines' loaders read and read back;
 * rebalance's decisions; hostile files refused with nothing run.
 */
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs'
import { join, relative } from 'node:path'
import { readEnginePlacement } from '@moe-route/policy-placement'
import { describe, expect, it } from 'vitest'
import { parse as parseYaml } from 'yaml'
import { cliHarness } from './test-utils.js'

const fixtures = join(import.meta.dirname, '../../workloads/test/fixtures/interop')
const { dir, cli } = cliHarness('moe-cli-interop-')
const MARKER = '/tmp/moe-route-pickle-marker'


const models = {
  olmoe: { experts: 64, topK: 8, hidden: 2048, intermediate: 1024, normalizeTopK: false },
  mixtral: { experts: 8, topK: 2, hidden: 4096, intermediate: 14336, normalizeTopK: true },
}
const shared = (m: string) => [`${m}-vllm-routed-experts.npy`, `${m}-sglang-expert-distribution-stat.pt`, `${m}-trtllm-stats`]
const cases = (['olmoe', 'mixtral'] as const).flatMap((m) => shared(m).map((f) => [m, f] as const))

describe('trace stats on the shared fixtures', () => {
  it.each(cases)('%s %s: per-layer per-expert counts equal the truth', async (m, f) => {
    const truth = JSON.parse(readFileSync(join(fixtures, `${m}-truth.json`), 'utf8'))
    const r = await cli('trace', 'stats', join(fixtures, f), '--json', '--devices', '4')
    expect(r.code, r.err).toBe(0)
    const s = JSON.parse(r.out)
    expect(s.layers.map((l: { load: number[] }) => l.load)).toEqual(truth.counts)
    expect(s.experts).toBe(truth.experts)
    expect(s.metrics.whole.vllm.balancedness).toHaveLength(truth.layers)
    expect(s.metrics.whole.vllm.avg).toBeGreaterThan(0)
    expect(s.metrics.whole.trtllm.avg).toBeGreaterThanOrEqual(0)
    expect(s.metrics.perStep.sglang.utilizationRate).toBeLessThanOrEqual(1)
  })

  it('--layer picks one layer; text output names the engine metrics', async () => {
    const r = await cli('trace', 'stats', join(fixtures, 'olmoe-trtllm-stats'), '--layer', '1')
    expect(r.code, r.err).toBe(0)
    expect(r.out).toContain('layer 1:')
    expect(r.out).not.toContain('layer 0:')
    expect(r.out).toMatch(/vLLM balancedness .* p90/)
    expect(r.out).toMatch(/TensorRT-LLM imbalance ratio/)
    expect(r.out).toMatch(/SGLang utilization rate/)
  })
})

describe('cache, simulate and placement accept every fixture', () => {
  it.each(cases)('%s %s', async (m, f) => {
    const trace = join(fixtures, f)
    const cache = await cli('cache', '--trace', trace, '--devices', '4', '--slots', '1,2', '--policy', 'lru,belady', '--json')
    expect(cache.code, cache.err).toBe(0)
    expect(JSON.parse(cache.out).rows.length).toBeGreaterThan(0)
    const cfg = join(dir, `${m}.json`)
    writeFileSync(cfg, JSON.stringify({ model: models[m], policies: [], devices: 4, workload: { source: trace, tokensPerBatch: 512, batches: 8 } }))
    const sim = await cli('simulate', '-c', cfg, '--json')
    expect(sim.code, sim.err).toBe(0)
    const s = JSON.parse(sim.out)
    expect(s.summary.batches).toBeGreaterThan(0)
    expect(s.engineMetrics.vllm.avg).toBeGreaterThan(0)
    const place = await cli('placement', '--algorithm', 'eplb', '--trace', trace, '--devices', '4', '--format', 'eplb', '--json')
    expect(place.code, place.err).toBe(0)
    expect(JSON.parse(place.out).phy2log).toHaveLength(2)
    const greedy = await cli('placement', '--algorithm', 'greedy', '--trace', trace, '--devices', '4', '--layer', '1')
    expect(greedy.code, greedy.err).toBe(0)
    expect(greedy.out).toMatch(/after: greedy placement/)
  })

  it('policies on a counts-only record are refused with a clear error', async () => {
    const cfg = join(dir, 'policies.json')
    writeFileSync(cfg, JSON.stringify({ model: models.olmoe, policies: [{ use: 'capacity-drop' }], devices: 4, workload: { source: join(fixtures, 'olmoe-trtllm-stats') } }))
    const r = await cli('simulate', '-c', cfg)
    expect(r.code).toBe(1)
    expect(r.err).toMatch(/^MOE_ROUTE_ERR_INPUT_INVALID: .*policies need per-token routing/)
  })

  it('token-level records run policies', async () => {
    const cfg = join(dir, 'policies-tokens.json')
    writeFileSync(cfg, JSON.stringify({ model: models.olmoe, policies: [{ use: 'capacity-drop', options: { capacityFactor: 1 } }], devices: 4, workload: { source: join(fixtures, 'olmoe-vllm-routed-experts.npy'), tokensPerBatch: 512, batches: 4 } }))
    const r = await cli('simulate', '-c', cfg, '--json')
    expect(r.code, r.err).toBe(0)
    expect(JSON.parse(r.out).summary.droppedFraction).toBeGreaterThan(0)
  })
})

describe('placement files for the engines from the OLMoE fixture', () => {
  const trace = join(fixtures, 'olmoe-vllm-routed-experts.npy')
  it('SGLang --init-expert-location: {"physical_to_logical_map": [layers][physical]} only', async () => {
    const out = join(dir, 'sglang.json')
    const r = await cli('placement', '--algorithm', 'eplb', '--trace', trace, '--devices', '8', '--replicas', '72', '--format', 'sglang', '--out', out)
    expect(r.code, r.err).toBe(0)
    const doc = JSON.parse(readFileSync(out, 'utf8'))
    expect(Object.keys(doc)).toEqual(['physical_to_logical_map']) // init_by_mapping(**data_dict)
    expect(doc.physical_to_logical_map).toHaveLength(2)
    for (const row of doc.physical_to_logical_map) {
      expect(row).toHaveLength(72) // num_logical_experts + ep_num_redundant_experts, divisible by ep_size
      expect(new Set(row).size).toBe(64)
    }
    expect(readEnginePlacement(readFileSync(out, 'utf8'), { gpus: 8 }).phy2log).toEqual(doc.physical_to_logical_map)
    const count = await cli('placement', '--algorithm', 'eplb', '--trace', trace, '--devices', '8', '--format', 'sglang-count', '--json')
    const truth = JSON.parse(readFileSync(join(fixtures, 'olmoe-truth.json'), 'utf8'))
    expect(JSON.parse(count.out)).toEqual({ logical_count: truth.counts })
  })

  it('vLLM expert map: moe_layer_count + layer_list[device_list[device_expert]], rectangular, distinct per device', async () => {
    const out = join(dir, 'vllm.json')
    const r = await cli('placement', '--algorithm', 'eplb', '--trace', trace, '--devices', '8', '--replicas', '72', '--format', 'vllm', '--out', out)
    expect(r.code, r.err).toBe(0)
    const doc = JSON.parse(readFileSync(out, 'utf8'))
    expect(doc.moe_layer_count).toBe(2)
    for (const layer of doc.layer_list) {
      expect(layer.device_count).toBe(8)
      expect(layer.device_list.map((d: { device_id: number }) => d.device_id)).toEqual([0, 1, 2, 3, 4, 5, 6, 7])
      for (const d of layer.device_list) {
        expect(d.device_expert).toHaveLength(9) // torch.tensor(tensor_data) needs equal lengths
        expect(new Set(d.device_expert).size).toBe(9) // expert_placement_map[layer, gpu, e_ids] = arange
      }
    }
    const back = readEnginePlacement(readFileSync(out, 'utf8'))
    expect(back.format).toBe('vllm')
    expect(back.phy2log).toEqual(doc.layer_list.map((l: { device_list: { device_expert: number[] }[] }) => l.device_list.flatMap((d) => d.device_expert)))
  })

  it('TensorRT-LLM moe_load_balancer.yaml: num_slots, initial_global_assignments, layer_updates_per_iter', async () => {
    const out = join(dir, 'moe_load_balancer.yaml')
    const r = await cli('placement', '--algorithm', 'eplb', '--trace', join(fixtures, 'olmoe-trtllm-stats'), '--devices', '8', '--replicas', '72', '--format', 'trtllm', '--out', out)
    expect(r.code, r.err).toBe(0)
    const doc = parseYaml(readFileSync(out, 'utf8'))
    expect(Object.keys(doc).sort()).toEqual(['initial_global_assignments', 'layer_updates_per_iter', 'num_slots']) // StrictBaseModel
    expect(doc.num_slots % 8).toBe(0)
    expect(doc.layer_updates_per_iter).toBe(0)
    for (const row of Object.values(doc.initial_global_assignments) as number[][]) expect(row).toHaveLength(doc.num_slots)
    expect(readEnginePlacement(readFileSync(out, 'utf8'), { gpus: 8 }).phy2log).toEqual(Object.values(doc.initial_global_assignments))
  })
})

describe('rebalance', () => {
  const stats = join(fixtures, 'olmoe-sglang-expert-distribution-stat.pt')
  const current = join(dir, 'current.json')
  writeFileSync(current, JSON.stringify({ physical_to_logical_map: [Array.from({ length: 64 }, (_, e) => e), Array.from({ length: 64 }, (_, e) => e)] }))

  it('moves at most --max-moves expert weights per layer and reports bytes', async () => {
    const out = join(dir, 'new.json')
    const r = await cli('rebalance', '--stats', stats, '--current', current, '--devices', '8', '--max-moves', '4', '--expert-bytes', '1000', '--out', out, '--json')
    expect(r.code, r.err).toBe(0)
    const rep = JSON.parse(r.out)
    expect(rep.decision).toBe('rebalance')
    for (const l of rep.layers) {
      expect(l.moved).toBeLessThanOrEqual(4)
      expect(l.after).toBeGreaterThanOrEqual(l.before)
      expect(l.bytesMoved).toBe(l.moved * 1000)
    }
    expect(rep.meanAfter).toBeGreaterThan(rep.meanBefore)
    expect(Object.keys(JSON.parse(readFileSync(out, 'utf8')))).toEqual(['physical_to_logical_map'])
  })

  it('writes no map (exit 0, saying why) when the gain is below --min-gain', async () => {
    const out = join(dir, 'none.json')
    const r = await cli('rebalance', '--stats', stats, '--current', current, '--devices', '8', '--min-gain', '0.9', '--out', out)
    expect(r.code, r.err).toBe(0)
    expect(r.out).toMatch(/no new map: predicted gain .* below --min-gain 0.9/)
    expect(existsSync(out)).toBe(false)
  })

  it('leaves layers at --min-balancedness alone', async () => {
    const r = await cli('rebalance', '--stats', stats, '--current', current, '--devices', '8', '--min-balancedness', '0.5', '--json')
    const rep = JSON.parse(r.out)
    expect(rep.layers[0].kept).toMatch(/min-balancedness/)
    expect(rep.layers[1].kept).toBeNull()
  })
})

describe('bad input through the CLI', () => {
  const hostile = readdirSync(join(fixtures, 'hostile'))
  it.each(hostile)('trace stats refuses hostile/%s and runs nothing', async (f) => {
    const r = await cli('trace', 'stats', join(fixtures, 'hostile', f))
    expect(r.code).toBe(1)
    expect(r.err).toMatch(/^MOE_ROUTE_ERR_TRACE_PICKLE_REFUSED: .*hostile/)
    expect(existsSync(MARKER)).toBe(false)
  })

  it('placement and cache refuse them too', async () => {
    const f = join(fixtures, 'hostile', 'os-system.pt')
    expect((await cli('placement', '--algorithm', 'eplb', '--trace', f)).err).toMatch(/^MOE_ROUTE_ERR_TRACE_PICKLE_REFUSED/)
    expect((await cli('cache', '--trace', f)).err).toMatch(/^MOE_ROUTE_ERR_TRACE_PICKLE_REFUSED/)
    expect(existsSync(MARKER)).toBe(false)
  })
})

describe('docs/interop.md', () => {
  const root = join(import.meta.dirname, '../../..')
  const doc = readFileSync(join(root, 'docs/interop.md'), 'utf8')
  const commands = [...doc.matchAll(/```bash\n([\s\S]*?)```/g)].flatMap((m) => m[1].split('\n')).filter((l) => l.startsWith('node packages/cli/dist/bin.js '))
  const docs = cliHarness('moe-cli-docs-')
  it('shows commands', () => expect(commands.length).toBeGreaterThan(10))
  it.each(commands)('runs as written: %s', async (line) => {
    const argv = line.replace('node packages/cli/dist/bin.js ', '').split(/\s+/).map((a) => (/^(packages|docs)\//.test(a) ? join(root, a) : a))
    const r = await docs.cli(...argv)
    expect(r.code, r.err).toBe(0)
  })
})

describe('records beside workload specs and odd shapes', () => {
  it('workload specs still work where a record may be given', async () => {
    const place = await cli('placement', '--algorithm', 'greedy', '--trace', 'olmoe:arxiv:layer0', '--devices', '8', '--batches', '4', '--json')
    expect(place.code, place.err).toBe(0)
    const cfg = join(dir, 'spec.json')
    writeFileSync(cfg, JSON.stringify({ model: models.mixtral, policies: [], devices: 4, workload: { source: 'mixtral:c4:layer7', tokensPerBatch: 256, batches: 2 } }))
    const sim = await cli('simulate', '-c', cfg, '--json')
    expect(sim.code, sim.err).toBe(0)
  })

  it('E that does not divide over --devices leaves the metrics out instead of failing', async () => {
    const f = join(dir, 'six.jsonl')
    writeFileSync(f, Array.from({ length: 20 }, (_, t) => JSON.stringify({ layer: 0, token: t, experts: [t % 6, (t + 1) % 6] })).join('\n'))
    const r = await cli('trace', 'stats', f, '--devices', '4', '--json')
    expect(r.code, r.err).toBe(0)
    expect(JSON.parse(r.out).metrics).toBeNull()
    const ok = await cli('trace', 'stats', f, '--devices', '3', '--json')
    expect(JSON.parse(ok.out).metrics.whole.devices).toBe(3)
  })

  it('a record path relative to the working directory', async () => {
    const rel = relative(dir, join(fixtures, 'mixtral-trtllm-stats'))
    expect(rel.startsWith('..')).toBe(true)
    const r = await cli('trace', 'stats', rel, '--devices', '4', '--json')
    expect(r.code, r.err).toBe(0)
    expect(JSON.parse(r.out).format).toBe('trtllm-stats')
  })
})
