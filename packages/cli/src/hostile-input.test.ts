/**
 * Regression tests of issue 18's findings (sizes trusted, stack traces, silently ignored input),
 * through the CLI's main() in this process. The hostile corpus (test/corpus) runs the real
 * binary over more of the same; plugin loading is covered in test/integration/plugin-trust.test.ts.
 */
import { join } from 'node:path'
import { seededLayerWeights } from '@moe-route/core'
import { layerTensorNames, writeSafetensors } from '@moe-route/workloads'
import { describe, expect, it } from 'vitest'
import { cliHarness } from './test-utils.js'
import type { RunReport } from './commands/run.js'

const { dir, file, cli } = cliHarness('moe-cli-hostile-')
const model = { experts: 8, topK: 2, hidden: 16, intermediate: 32 }
const issuesOf = async (cfg: string) => {
  const r = await cli('validate', '-c', cfg, '--json')
  return JSON.parse(r.out).issues as { code: string; path: string; message: string }[]
}
const jsonl = (records: object[]) => records.map((r) => JSON.stringify(r)).join('\n') + '\n'

describe('no size is trusted', () => {
  it('validate bounds every size in the schema and refuses a run that would not fit in memory, with the estimate', async () => {
    const huge = file('huge.json', { model: { experts: 8, topK: 2, hidden: 1e9, intermediate: 32 }, workload: { source: 'uniform:E=8:k=2', tokensPerBatch: 1e15 } })
    expect((await issuesOf(huge)).map((i) => i.path).sort()).toEqual(['/model/hidden', '/workload/tokensPerBatch'])
    const wide = file('wide.json', { model: { experts: 65536, topK: 2, hidden: 65536, intermediate: 262144 } })
    const [memory] = await issuesOf(wide)
    expect(memory).toMatchObject({ code: 'MOE_ROUTE_ERR_SIZE_LIMIT', path: '/model' })
    expect(memory.message).toMatch(/needs about [\d.]+ PiB of memory \(layer weights \(f32\) .* \(E·\(3·H·I \+ H\)·4 B\)/)
    const r = await cli('run', '-c', wide, '--no-progress')
    expect(r.code).toBe(1)
    expect(r.err).toMatch(/^MOE_ROUTE_ERR_SIZE_LIMIT: running .*wide\.json needs about/)
  })

  it('simulate refuses a batch whose routing would not fit in memory (batches are streamed, so their number is not bounded)', async () => {
    const cfg = file('sim-huge.json', { model: { ...model, experts: 65536 }, workload: { source: 'uniform:E=65536:k=2', tokensPerBatch: 1 << 20, batches: 1_000_000 } })
    const r = await cli('simulate', '-c', cfg)
    expect(r.code).toBe(1)
    expect(r.err).toMatch(/^MOE_ROUTE_ERR_SIZE_LIMIT: simulating .*sim-huge\.json needs about [\d.]+ [KMGTP]iB of memory \(one batch's routing/)
  })

  it('a workload spec with a huge E is refused before anything is generated', async () => {
    const cfg = file('uniform-huge.json', { model, workload: { source: 'uniform:E=1000000000:k=2' } })
    expect(await issuesOf(cfg)).toEqual([expect.objectContaining({ code: 'MOE_ROUTE_ERR_SIZE_LIMIT', path: '/workload/source' })])
    const r = await cli('run', '-c', cfg, '--no-progress')
    expect(r.err).toMatch(/^MOE_ROUTE_ERR_SIZE_LIMIT: workload spec 'uniform:E=1000000000:k=2'/)
  })

  it('an expert id of 1e9 or 2^53 in a trace without a declared E is refused, not allocated for', async () => {
    const big = file('big-id.jsonl', jsonl([{ layer: 0, token: 0, experts: [1, 1e9] }]))
    const huge = file('huge-id.jsonl', jsonl([{ layer: 0, token: 0, experts: [1, 2 ** 53] }]))
    for (const argv of [['trace', 'stats', big], ['cache', '--trace', big]]) {
      const r = await cli(...argv)
      expect(r.code).toBe(1)
      expect(r.err).toMatch(/^MOE_ROUTE_ERR_TRACE_CORRUPT: .*line 1: expert id 1000000000 is out of range: it exceeds the largest supported number of experts \(65536\)/)
    }
    const r = await cli('trace', 'stats', huge)
    expect(r.err).toMatch(/^MOE_ROUTE_ERR_TRACE_CORRUPT: .*expert id 9007199254740992 is not a non-negative integer/)
  })

  it('--slots beyond the experts per device, and flags beyond their bounds, are refused before any list is built', async () => {
    const t = file('small.jsonl', jsonl([{ layer: 0, token: 0, experts: [0, 1] }, { layer: 0, token: 1, experts: [2, 3] }]))
    const slots = await cli('cache', '--trace', t, '--slots', '1..99999999')
    expect(slots.err).toBe("MOE_ROUTE_ERR_SIZE_LIMIT: --slots: '1..99999999' asks for 99999999 slots, more than the 4 experts per device")
    expect((await cli('cache', '--trace', t, '--experts', '1e9')).err).toMatch(/^MOE_ROUTE_ERR_INPUT_INVALID: --experts must be an integer/)
    expect((await cli('cache', '--trace', t, '--experts', '1000000000')).err).toBe('MOE_ROUTE_ERR_SIZE_LIMIT: --experts is 1000000000, more than the largest supported (65536)')
    expect((await cli('run', '--tokens', '99999999999', '--no-progress')).err).toMatch(/^MOE_ROUTE_ERR_SIZE_LIMIT: --tokens is 99999999999/)
  })

  it('cache reads a trace of more than 125k records without --experts (no spread into Math.max)', async () => {
    const records = Array.from({ length: 130_000 }, (_, t) => ({ layer: 0, token: t, experts: [t % 8, (t + 3) % 8] }))
    const r = await cli('cache', '--trace', file('long.jsonl', jsonl(records)), '--slots', '4', '--policy', 'lifo', '--batch', '4096', '--json')
    expect(r.err).toBe('')
    expect(JSON.parse(r.out).experts).toBe(8)
  }, 120_000)
})

describe('coded errors instead of stack traces', () => {
  it('run and route on a config holding null, an array or a number', async () => {
    for (const [name, text] of [['null.json', 'null'], ['array.json', '[]'], ['number.json', '7']]) {
      const cfg = file(name, text)
      for (const r of [await cli('run', '-c', cfg, '--no-progress'), await cli('route', '-i', file('in1.json', { experts: 2, topK: 1, scores: [[1, 0]] }), '-c', cfg), await cli('validate', '-c', cfg)]) {
        expect(r.code).toBe(1)
        expect(r.err).toMatch(/^MOE_ROUTE_ERR_CONFIG_INVALID: .*must hold a JSON object/)
        expect(r.err).not.toMatch(/\n\s+at /)
      }
    }
  })

  it('a config or input that is a device (/dev/zero) is refused, never read forever', async () => {
    for (const r of [await cli('validate', '-c', '/dev/zero'), await cli('route', '-i', '/dev/zero')]) {
      expect(r.code).toBe(1)
      expect(r.err).toMatch(/^MOE_ROUTE_ERR_FILE_NOT_FOUND: cannot read \/dev\/zero: not a regular file/)
    }
  })

  it('route input: empty, not JSON, no tokens, too wide', async () => {
    expect((await cli('route', '-i', file('empty.json', ''))).err).toMatch(/^MOE_ROUTE_ERR_INPUT_EMPTY: /)
    expect((await cli('route', '-i', file('garbage.json', '{"experts":'))).err).toMatch(/^MOE_ROUTE_ERR_CONFIG_PARSE: /)
    expect((await cli('route', '-i', file('none.json', { experts: 2, topK: 1, scores: [] }))).err).toBe('MOE_ROUTE_ERR_INPUT_EMPTY: route input /scores: has no tokens')
    expect((await cli('route', '-i', file('wide.json', { experts: 1e6, topK: 1, scores: [[1]] }))).err).toBe('MOE_ROUTE_ERR_SIZE_LIMIT: route input /experts: 1000000 is more than the largest supported (65536)')
  })
})

describe('no input is silently ignored or wrong', () => {
  it('a source device of 2^32 does not wrap to device 0, and one past the devices is refused', async () => {
    const wrap = await cli('route', '-i', file('src-wrap.json', { experts: 2, topK: 1, scores: [[1, 0]], sourceDevice: [2 ** 32] }))
    expect(wrap.err).toBe('MOE_ROUTE_ERR_INPUT_INVALID: route input /sourceDevice/0: must be a non-negative integer (a device index)')
    const cfg = file('two-dev.json', { model: { experts: 4, topK: 1, hidden: 1, intermediate: 1 }, devices: 2 })
    const past = await cli('route', '-i', file('src-past.json', { experts: 4, topK: 1, scores: [[1, 0, 0, 0]], sourceDevice: [2] }), '-c', cfg)
    expect(past.err).toMatch(/^MOE_ROUTE_ERR_INPUT_INVALID: route input \/sourceDevice\/0: device 2 is outside 0\.\.1/)
  })

  it('negative scores are refused (they would become negative weights and negative gate mass)', async () => {
    const r = await cli('route', '-i', file('neg.json', { experts: 2, topK: 1, scores: [[0.5, -0.5]] }))
    expect(r.code).toBe(1)
    expect(r.err).toMatch(/^MOE_ROUTE_ERR_INPUT_INVALID: route input \/scores\/0\/1: -0\.5 is negative/)
  })

  it('capacityFactor 1e400 is no number; 1e-300 gives the documented ceil(γkT/E) = 1', async () => {
    const inf = file('inf.json', `{"model":{"experts":4,"topK":1,"hidden":1,"intermediate":1},"policies":[{"use":"capacity-drop","options":{"capacityFactor":1e400}}]}`)
    expect(await issuesOf(inf)).toEqual([expect.objectContaining({ path: '/policies/0/options/capacityFactor', message: 'must be number' })])
    const tiny = file('tiny.json', { model: { experts: 4, topK: 1, hidden: 1, intermediate: 1, normalizeTopK: false }, policies: [{ use: 'capacity-drop', options: { capacityFactor: 1e-300 } }] })
    const r = await cli('route', '-i', file('in4.json', { experts: 4, topK: 1, scores: [[0.7, 0.1, 0.1, 0.1], [0.9, 0.05, 0.03, 0.02]] }), '-c', tiny, '--json')
    expect(r.err).toBe('')
    expect(JSON.parse(r.out)).toMatchObject({ capacity: 1, load: [1, 0, 0, 0] })
  })

  it('validate catches what run would fail on: maxInFlight above the stream capacity, a policy falling back to itself', async () => {
    const cfg = file('cross.json', { model, stream: { maxInFlight: 8, capacity: 2 }, policies: [{ use: 'capacity-drop', fallback: { use: 'capacity-drop' } }] })
    expect((await issuesOf(cfg)).map((i) => i.path).sort()).toEqual(['/policies/0/fallback/use', '/stream/maxInFlight'])
  })

  it('a pair whose weight underflows to 0 is not routed, so it takes no capacity', async () => {
    // token 0 wants expert 0 only (its second pick underflows); token 1 wants expert 1. With C = 1
    // and first-come priority, token 0's zero-weight pair on expert 1 used to push token 1 out.
    const cfg = file('underflow.json', { model: { experts: 4, topK: 2, hidden: 1, intermediate: 1, normalizeTopK: false }, policies: [{ use: 'capacity-drop', options: { capacityFactor: 1, priority: 'first' } }] })
    const input = { experts: 4, topK: 2, logits: [[0, -200, -300, -300], [-300, 0, -200, -300], [-300, -300, 0, -200], [-200, -300, -300, 0]] }
    const r = await cli('route', '-i', file('underflow-in.json', input), '-c', cfg, '--json')
    expect(r.err).toBe('')
    const out = JSON.parse(r.out)
    expect(out.tokens.map((t: { kept: [number, number][] }) => t.kept.map(([e]) => e))).toEqual([[0], [1], [2], [3]])
    expect(out.tokens.every((t: { dropped: unknown[] }) => t.dropped.length === 0)).toBe(true)
  })

  it('an empty trace is an error for run, simulate and trace stats, never "0 batches"', async () => {
    const empty = file('empty.jsonl', '')
    const cfg = file('empty-trace.json', { model, workload: { source: empty } })
    for (const r of [await cli('run', '-c', cfg, '--no-progress'), await cli('simulate', '-c', cfg), await cli('trace', 'stats', empty)]) {
      expect(r.code).toBe(1)
      expect(r.err).toMatch(/^MOE_ROUTE_ERR_INPUT_EMPTY: /)
    }
  })

  it('run --batches/--tokens apply when the config names no workload', async () => {
    const r = await cli('run', '-c', file('no-workload.json', { model }), '--batches', '3', '--tokens', '16', '--json', '--no-progress')
    expect(r.err).toBe('')
    const report = JSON.parse(r.out) as RunReport
    expect(report).toMatchObject({ batches: 3, tokens: 48, workload: { tokensPerBatch: 16 } })
  })

  it('weights.file loads the layer from safetensors on the CPU backend: the same output as the same weights seeded', async () => {
    const shape = { ...model, normalizeTopK: true }
    const w = seededLayerWeights(shape, 5, 0.02)
    const names = layerTensorNames('mixtral', 0, model.experts)
    const tensors: Record<string, { dtype: 'F32'; shape: number[]; data: Float32Array }> = { [names.router]: { dtype: 'F32', shape: [8, 16], data: w.router } }
    w.experts.forEach((e, i) => {
      tensors[names.gate[i]] = { dtype: 'F32', shape: [32, 16], data: e.gate }
      tensors[names.up[i]] = { dtype: 'F32', shape: [32, 16], data: e.up }
      tensors[names.down[i]] = { dtype: 'F32', shape: [16, 32], data: e.down }
    })
    await writeSafetensors(join(dir, 'layer.safetensors'), tensors)
    const workload = { source: 'uniform:E=8:k=2', tokensPerBatch: 32, batches: 2 }
    const fromFile = await cli('run', '-c', file('wfile.json', { model, weights: { file: 'layer.safetensors' }, workload }), '--json', '--no-progress')
    const seeded = await cli('run', '-c', file('wseed.json', { model, weights: { seed: 5, std: 0.02 }, workload }), '--json', '--no-progress')
    expect(fromFile.err).toBe('')
    const a = JSON.parse(fromFile.out) as RunReport
    const b = JSON.parse(seeded.out) as RunReport
    expect(a.output.l2Norm).toBeGreaterThan(0)
    expect(a.output.batchNorms).toEqual(b.output.batchNorms)
    const wrong = await cli('run', '-c', file('wfile-bad.json', { model: { ...model, intermediate: 64 }, weights: { file: 'layer.safetensors' }, workload }), '--no-progress')
    expect(wrong.err).toMatch(/^MOE_ROUTE_ERR_SHAPE_MISMATCH: .*layer\.safetensors: tensor model\.layers\.0\.block_sparse_moe\.experts\.0\.w1\.weight has shape \[32,16\], the model needs \[64,16\]/)
  })

  it('an expert-buffer store counts the bytes of the misses it streams past the cache', async () => {
    const cfg = file('store.json', { model, store: { use: 'expert-buffer', options: { slots: 2 } }, workload: { source: 'uniform:E=8:k=2', tokensPerBatch: 64, batches: 4 } })
    const r = await cli('run', '-c', cfg, '--json', '--no-progress')
    expect(r.err).toBe('')
    const { store } = JSON.parse(r.out) as RunReport
    expect(store!.misses).toBeGreaterThan(0)
    // every miss moves one expert (f32 by default: 3·H·I·4 bytes), streamed past the slots or loaded into one
    expect(store!.bytesUploaded).toBe(store!.misses * 3 * 16 * 32 * 4)
  })
})
