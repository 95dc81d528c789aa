/**
 * bench/ep-compare.mjs end to end on a recorded CPU run of bench/ep_layer.py (gloo, 1 and 2
 * ranks, tiny shapes; bench/results/ep-cpu): the recorded JSON validates against
 * bench/ep-layer.schema.json, the simulator reproduces what the layer computed and sent, the
 * fits and the held-out split are made and written in the simulator's calibration format, and
 * tampered results are refused. `prepare` runs the real CLI on a small case.
 */
import { compileSchema } from '@moe-route/core'
import { createTokenDrop } from '@moe-route/policy-capacity-drop'
import { checkCalibration, linkModelFor, type Calibration } from '@moe-route/simulator'
import { traceBatches } from '@moe-route/workloads'
import { contiguousPlacement, softmaxTopK, mulberry32 } from '@moe-route/core'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gunzipSync } from 'node:zlib'
import { afterAll, describe, expect, it } from 'vitest'
// @ts-expect-error: a plain ES module of the bench folder, no type declarations
import { assignSplit, compare, CompareError, prepare } from '../../bench/ep-compare.mjs'
import { ROOT } from './helpers.js'

const RESULTS = join(ROOT, 'bench/results/ep-cpu')
const INPUTS = join(RESULTS, 'inputs')
const recorded = ['ep-layer-N1.json', 'ep-layer-N2.json'].map((f) => join(RESULTS, f))
const tmp = mkdtempSync(join(tmpdir(), 'ep-compare-test-'))
afterAll(() => rmSync(tmp, { recursive: true, force: true }))

interface Row { split: string; devices: number; model: string; placement: string; tokens: number; errCalibrated: number }

describe('the recorded CPU run of ep_layer.py', () => {
  it('validates against bench/ep-layer.schema.json, and the schema rejects a broken document', () => {
    const validate = compileSchema(JSON.parse(readFileSync(join(ROOT, 'bench/ep-layer.schema.json'), 'utf8')))
    for (const f of recorded) {
      const doc = JSON.parse(readFileSync(f, 'utf8'))
      expect(validate(doc), JSON.stringify(validate.errors)).toBe(true)
      expect(doc.complete).toBe(true)
      expect(doc.meta.env).toEqual({ NCCL_NVLS_ENABLE: '0', TORCH_SYMM_MEM_DISABLE_MULTICAST: '1', NVSHMEM_DISABLE_NVLS: '1' })
      for (const run of doc.runs) for (const b of run.batches) expect(b.check.relL2).toBeLessThan(1e-5) // fp32 against the fp64 reference
      const bad = structuredClone(doc)
      delete bad.runs[0].batches[0].perDevice
      expect(validate(bad)).toBe(false)
    }
  })
})

describe('ep-compare compare', () => {
  const out = join(tmp, 'compare')
  let result: { report: any; md: string; files: string[] }

  it('simulates every recorded run, fits on half and reports the other half', async () => {
    result = await compare(['--inputs', INPUTS, '--results', ...recorded, '--out', out, '--cli-check-runs', '2', '--weight-bandwidth', '2e10'])
    const r = result.report
    expect(r.summary.mismatches).toEqual([])
    // the CLI itself (`moe-route simulate`) gives the library path's numbers
    expect(r.summary.cliCheck).toEqual({ runs: 2, agree: 2 })
    const runs = recorded.flatMap((f) => JSON.parse(readFileSync(f, 'utf8')).runs.filter((x: { batches: unknown[] }) => x.batches.length))
    expect(r.rows).toHaveLength(runs.length)
    // every (model, N) has both halves, and a group's γ variants share their half
    const rows = r.rows as Row[]
    for (const key of new Set(rows.map((x) => `${x.model}|${x.devices}`))) {
      const splits = new Set(rows.filter((x) => `${x.model}|${x.devices}` === key).map((x) => x.split))
      expect([...splits].sort(), key).toEqual(['fit', 'held-out'])
    }
    for (const x of rows) {
      const group = rows.filter((y) => y.model === x.model && y.devices === x.devices && y.placement === x.placement && y.tokens === x.tokens)
      expect(new Set(group.map((y) => y.split)).size).toBe(1)
      expect(Number.isFinite(x.errCalibrated)).toBe(true)
    }
    expect(r.summary.heldOut.layerCalibrated.n).toBe(rows.filter((x) => x.split === 'held-out').length)
    expect(r.speedups.filter((s: { kind: string }) => s.kind === 'capacity').length).toBe(rows.filter((x: any) => x.gamma !== null && x.gamma !== undefined).length)
    expect(r.speedups.some((s: { kind: string }) => s.kind === 'devices')).toBe(true)
    expect(result.md).toContain('| model | N | placement | T | γ | split |')
    expect(existsSync(join(out, 'ep-compare.md'))).toBe(true)
  })

  it('writes one calibration per shape in the simulator format, with the link fitted to N = 2', () => {
    const files = readdirSync(out).filter((f) => f.startsWith('ep-calibration-cpu-'))
    expect(files.sort()).toEqual(['ep-calibration-cpu-tiny-mixtral.json', 'ep-calibration-cpu-tiny-olmoe.json'])
    for (const f of files) {
      const cal = JSON.parse(readFileSync(join(out, f), 'utf8')) as Calibration
      expect(() => checkCalibration(cal)).not.toThrow()
      expect(cal.format).toBe('moe-route.cost-model/v1')
      expect(cal.provenance).toMatch(/^MEASURED by moe-route's bench\/ep_layer.py/)
      expect(cal.points.length).toBeGreaterThan(0)
      for (const p of cal.points) {
        expect(p.expertRows!.reduce((a, b) => a + b, 0)).toBeCloseTo(p.tokens * cal.shape.topK, 9)
        expect(p.predictedMs).toBeGreaterThan(0)
      }
      expect(cal.link!.perDevices!.map((d) => d.devices)).toEqual([2])
      expect(linkModelFor(cal.link!, 2).bandwidth).toBe(cal.link!.perDevices![0].bandwidth)
    }
  })

  it('refuses results whose rows the simulator cannot reproduce, and files that are not results', async () => {
    const doc = JSON.parse(readFileSync(recorded[1], 'utf8'))
    const b = doc.runs[0].batches[0]
    b.deviceRows = [b.deviceRows[0] + 1, b.deviceRows[1] - 1]
    const bad = join(tmp, 'tampered.json')
    writeFileSync(bad, JSON.stringify(doc))
    const err = await compare(['--inputs', INPUTS, '--results', bad, '--out', join(tmp, 'x'), '--no-cli-check']).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(CompareError)
    expect((err as CompareError & { exitCode: number }).exitCode).toBe(1)
    expect((err as Error).message).toMatch(/disagree on what was computed or sent[\s\S]*device rows/)
    writeFileSync(bad, JSON.stringify({ schema: 'something-else' }))
    await expect(compare(['--inputs', INPUTS, '--results', bad])).rejects.toThrow(/not an ep_layer.py result/)
    await expect(compare(['--inputs', tmp, '--results', recorded[0]])).rejects.toThrow(/prepare record .*cannot read/)
    await expect(compare(['--inputs', INPUTS, '--results', recorded[0], '--bogus', '1'])).rejects.toThrow(/unknown option --bogus/)
  })

  it('splits groups so that both halves hold each placement and each T', () => {
    const rows = ['contiguous', 'eplb'].flatMap((placement) => [2048, 8192].map((tokens) => ({ model: 'm', devices: 2, placement, tokens, split: '' })))
    assignSplit(rows)
    expect(rows.map((r) => `${r.placement}/${r.tokens}:${r.split}`)).toEqual(['contiguous/2048:fit', 'contiguous/8192:held-out', 'eplb/2048:held-out', 'eplb/8192:fit'])
  })
})

describe('ep-compare prepare', () => {
  it('writes traces, placements, `moe-route route` decisions and a manifest with the real CLI', async () => {
    const dir = join(tmp, 'prepare')
    const info = await prepare(['--out', dir, '--tiny', '--devices', '2', '--models', 'mixtral', '--tokens', '12', '--batches', '2', '--gammas', 'none,1.0'])
    expect(info.models.mixtral.shape).toBe('tiny-mixtral')
    const manifest = JSON.parse(readFileSync(join(dir, 'manifest-N2.json'), 'utf8'))
    expect(manifest.configs.map((c: { name: string }) => c.name)).toEqual(['tiny-mixtral/contiguous/T12', 'tiny-mixtral/eplb/T12'])
    expect(manifest.configs[0].variants.map((v: { name: string }) => v.name)).toEqual(['none', 'γ1.0'])
    // EPLB on 2 GPUs with one redundant slot each: 10 slots, every expert placed
    const eplb = JSON.parse(readFileSync(join(dir, 'placement-mixtral-eplb-N2.json'), 'utf8'))
    expect(eplb.phy2log[0]).toHaveLength(10)
    expect(new Set(eplb.phy2log[0]).size).toBe(8)
    // the decisions are capacity-drop's on the batches `moe-route simulate --trace` builds
    const lines = gunzipSync(readFileSync(join(dir, 'decisions-mixtral-T12-g1.0.jsonl.gz'))).toString('utf8').trim().split('\n').map((l) => JSON.parse(l))
    expect(lines).toHaveLength(2)
    const policy = createTokenDrop({ capacityFactor: 1.0 })
    let i = 0
    for await (const b of traceBatches(join(dir, 'trace-mixtral-measure.jsonl'), { experts: 8, topK: 2, tokensPerBatch: 12, batches: 2, seed: 0 })) {
      const routing = softmaxTopK({ tokens: b.tokens, experts: 8, scores: b.scores! }, 2, true)
      const kept = policy.apply(routing, { placement: contiguousPlacement(8, 2), batchId: i, random: mulberry32(1) }).routing
      const keptPairs = Array.from(kept.expertIds).filter((e) => e >= 0).length
      expect(lines[i].tokens.reduce((s: number, t: { kept: unknown[] }) => s + t.kept.length, 0)).toBe(keptPairs)
      expect(lines[i].capacity).toBe(Math.ceil((1.0 * 2 * 12) / 8))
      i++
    }
    expect(i).toBe(2)
    await expect(prepare(['--out', dir, '--gammas', '1.0,none'])).rejects.toThrow(/must start with none/)
    await expect(prepare(['--out', dir, '--models', 'gpt'])).rejects.toThrow(/not one of mixtral, olmoe/)
  })
})
