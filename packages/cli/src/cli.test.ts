import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { profileFromCounts } from '@moe-route/policy-c2r'
import { describe, expect, it } from 'vitest'
import { resolveC2rProfile } from './c2r-profile.js'
import type { CliContext } from './context.js'
import { main } from './main.js'
import { cliHarness } from './test-utils.js'
import type { RunReport } from './commands/run.js'

const { dir, file, cli } = cliHarness('moe-cli-')


describe('moe-route validate', () => {
  it('prints every error with its code and field, and exits non-zero', async () => {
    const bad = file('bad.json', {
      model: { experts: 8, topK: 9, hidden: 64, intermediate: 0 },
      policies: [{ use: 'capacity-drop', options: { capacityFactor: -1, priority: 'loudest' } }, { use: 'no-such-policy' }],
    })
    const r = await cli('validate', '--config', bad)
    expect(r.code).toBe(1)
    for (const needle of ['/model/intermediate', '/model/topK', '/policies/0/options/capacityFactor', '/policies/0/options/priority', '/policies/1/use']) {
      expect(r.err).toContain(needle)
    }
    expect(r.err).toMatch(/^MOE_ROUTE_ERR_/m)
  })

  it('accepts a good config', async () => {
    const good = file('good.json', { model: { experts: 8, topK: 2, hidden: 64, intermediate: 128 }, policies: [{ use: 'capacity-drop' }] })
    const r = await cli('validate', '--config', good)
    expect(r.code).toBe(0)
    expect(r.out).toContain('valid')
  })

  it('names missing and unparsable files', async () => {
    expect((await cli('validate', '--config', join(dir, 'nope.json'))).err).toMatch(/^MOE_ROUTE_ERR_FILE_NOT_FOUND: /)
    expect((await cli('validate', '--config', file('broken.json', '{ "model": '))).err).toMatch(/^MOE_ROUTE_ERR_CONFIG_PARSE: /)
    const usage = await cli('frobnicate')
    expect(usage.code).toBe(2)
    expect(usage.err).toMatch(/^MOE_ROUTE_ERR_USAGE/)
  })
})

describe('moe-route route', () => {
  // 4 tokens, 4 experts, top-1: every token wants expert 0. capacity-drop γ=1 → C = ceil(1·1·4/4) = 1.
  const input = {
    experts: 4,
    topK: 1,
    scores: [
      [0.7, 0.1, 0.1, 0.1],
      [0.9, 0.05, 0.03, 0.02],
      [0.4, 0.3, 0.2, 0.1],
      [0.6, 0.2, 0.1, 0.1],
    ],
  }
  it('routes through the config policies and prints the documented JSON', async () => {
    const cfg = file('route.json', { model: { experts: 4, topK: 1, hidden: 1, intermediate: 1, normalizeTopK: false }, policies: [{ use: 'capacity-drop', options: { capacityFactor: 1 } }] })
    const r = await cli('route', '--input', file('in.json', input), '--config', cfg, '--json')
    expect(r.code, r.err).toBe(0)
    const o = JSON.parse(r.out)
    expect(o.capacity).toBe(1)
    expect(o.tokens[1].kept).toEqual([[0, expect.closeTo(0.9, 5)]]) // highest score wins
    expect(o.tokens.map((t: { dropped: unknown[] }) => t.dropped.length)).toEqual([1, 0, 1, 1])
    expect(o.tokens[0].dropped[0]).toEqual([0, expect.closeTo(0.7, 5), 'capacity'])
    expect(o.load).toEqual([1, 0, 0, 0])
    expect(o.loadBefore).toEqual([4, 0, 0, 0])
  })

  it('without a config routes under the embedded default (capacity drop γ 1.0); {"policies": []} routes plain top-k', async () => {
    const r = await cli('route', '--input', file('in2.json', { ...input, topK: 2 }), '--json')
    expect(r.code, r.err).toBe(0)
    const o = JSON.parse(r.out)
    expect(o.capacity).toBe(2) // ceil(1.0 · 2 · 4 / 4)
    expect(o.load).toEqual([2, 2, 0, 0]) // every token wants experts 0 and 1: the cap drops the rest
    const plain = JSON.parse((await cli('route', '--input', file('in2.json', { ...input, topK: 2 }), '--config', file('none.json', { policies: [] }), '--json')).out)
    expect(plain.capacity).toBeNull()
    expect(plain.tokens[2].kept.map((p: number[]) => p[0])).toEqual([0, 1])
  })

  it('takes the shape from the input: a config needs no model, a partial model keeps the input shape', async () => {
    const cfg = file('route-policies.json', { policies: [{ use: 'capacity-drop', options: { capacityFactor: 1 } }] })
    const r = await cli('route', '--input', file('in.json', input), '--config', cfg, '--json')
    expect(r.code, r.err).toBe(0)
    expect(JSON.parse(r.out).load).toEqual([1, 0, 0, 0])
    const partial = file('route-partial.json', { model: { normalizeTopK: false }, policies: [] })
    expect((await cli('route', '--input', file('in.json', input), '--config', partial, '--json')).code).toBe(0)
    const other = file('route-other.json', { model: { experts: 8, topK: 2, hidden: 4, intermediate: 4 } })
    expect((await cli('route', '--input', file('in.json', input), '--config', other, '--json')).err).toMatch(/^MOE_ROUTE_ERR_SHAPE_MISMATCH: input has experts 4, topK 1 but /)
  })

  it.each([
    ['k > E', { ...input, topK: 5 }, 'MOE_ROUTE_ERR_TOPK_EXCEEDS_EXPERTS'],
    ['NaN score', { ...input, scores: [[0.5, 'NaN', 0.2, 0.3]] }, 'MOE_ROUTE_ERR_INPUT_NOT_FINITE'],
    ['ragged row', { ...input, scores: [[0.5, 0.5]] }, 'MOE_ROUTE_ERR_SHAPE_MISMATCH'],
    ['both scores and logits', { ...input, logits: input.scores }, 'MOE_ROUTE_ERR_INPUT_INVALID'],
  ])('%s gets a clear error', async (_n, doc, code) => {
    const r = await cli('route', '--input', file(`bad-${code}.json`, doc), '--json')
    expect(r.code).toBe(1)
    expect(r.err.startsWith(code)).toBe(true)
  })
})

describe('moe-route run', () => {
  it('runs the embedded default (shortened) and reports load, drops and stable output norms', async () => {
    const a = await cli('run', '--json', '--batches', '2', '--tokens', '128')
    expect(a.code, a.err).toBe(0)
    const r = JSON.parse(a.out) as RunReport
    expect(r.backend.name).toBe('cpu')
    expect(r.shape).toMatchObject({ experts: 8, topK: 2, hidden: 256, intermediate: 896 })
    expect(r.batches).toBe(2)
    expect(r.tokens).toBe(256)
    expect(r.pairs).toBe(512)
    expect(r.load.before.reduce((s, x) => s + x, 0)).toBe(512)
    expect(r.load.after.reduce((s, x) => s + x, 0)).toBe(512 - r.droppedPairs)
    expect(Math.max(...r.load.after)).toBeLessThanOrEqual(2 * Math.ceil((1.5 * 2 * 128) / 8)) // γ=1.5 cap per batch, 2 batches
    expect(r.output.l2Norm).toBeGreaterThan(0)
    const b = JSON.parse((await cli('run', '--json', '--batches', '2', '--tokens', '128')).out) as RunReport
    expect(b.output.batchNorms).toEqual(r.output.batchNorms)
    expect(r.output.batchNorms).toHaveLength(2)
    const text = await cli('run', '--batches', '1', '--tokens', '64', '--no-progress')
    expect(text.out).toContain('load per expert')
    expect(text.out).toContain('L2 norm')
  }, 60_000)
})

describe('config sections default to the embedded default', () => {
  const policiesOnly = () => file('policies-only.jsonc', `{
    // only the policy stack: model, workload, weights and stream are the embedded default's
    "policies": [{ "use": "capacity-drop", "options": { "capacityFactor": 1.5 } },],
  }`)

  it('a config with only policies (JSONC, comments and a trailing comma) validates, runs and simulates', async () => {
    const cfg = policiesOnly()
    expect((await cli('validate', '--config', cfg)).out).toContain('valid')
    const run = await cli('run', '--config', cfg, '--json', '--batches', '1', '--tokens', '64')
    expect(run.code, run.err).toBe(0)
    const r = JSON.parse(run.out) as RunReport
    expect(r.shape).toMatchObject({ experts: 8, topK: 2, hidden: 256, intermediate: 896 })
    expect(r.policies).toEqual([{ use: 'capacity-drop', options: { capacityFactor: 1.5 } }])
    expect(r.workload.source).toBe('mixtral:c4:layer7')
    const sim = await cli('simulate', '--config', cfg, '--devices', '2', '--json')
    expect(sim.code, sim.err).toBe(0)
    expect(JSON.parse(sim.out).setup.policies).toEqual(['capacity-drop'])
  })

  it('simulate runs without --config (the embedded default)', async () => {
    const sim = await cli('simulate', '--devices', '4', '--json')
    expect(sim.code, sim.err).toBe(0)
    expect(JSON.parse(sim.out).summary).toMatchObject({ devices: 4, experts: 8 })
  })

  it('names the line and column of a syntax error; a model of another shape without a workload runs the uniform workload of its shape', async () => {
    const bad = await cli('validate', '--config', file('bad-syntax.jsonc', '{\n  // fine\n  "policies": [ }\n'))
    expect(bad.err).toMatch(/^MOE_ROUTE_ERR_CONFIG_PARSE: .*bad-syntax\.jsonc is not valid JSON \(comments allowed\): ValueExpected at line 3, column 17/)
    const big = file('big.json', { model: { experts: 64, topK: 8, hidden: 16, intermediate: 16 } })
    expect((await cli('validate', '--config', big)).code).toBe(0)
    const shape = await cli('run', '--config', big, '--batches', '2', '--tokens', '16', '--json', '--no-progress')
    expect(shape.code, shape.err).toBe(0)
    expect((JSON.parse(shape.out) as RunReport).workload.source).toBe('uniform:E=64:k=8')
    // a workload that is given must fit the model: the error names the source
    const mismatch = await cli('run', '--config', file('mismatch.json', { model: { experts: 64, topK: 8, hidden: 16, intermediate: 16 }, workload: { source: 'mixtral:c4:layer7' } }), '--no-progress')
    expect(mismatch.err).toMatch(/^MOE_ROUTE_ERR_SHAPE_MISMATCH: .*workload mixtral:c4:layer7 routes 8 experts top-2, but the model is 64 experts top-8/)
  })
  it('a JSONC config keeps __proto__ as a key (refused by the check), never as a prototype', async () => {
    const proto = await cli('validate', '--config', file('proto.jsonc', '{\n  // comment\n  "__proto__": { "policies": [] },\n}\n'))
    expect(proto.code).toBe(1)
    expect(proto.err).toMatch(/__proto__/)
  })
})

describe('moe-route run: dispatcher, store and metrics', () => {
  const model = { experts: 8, topK: 2, hidden: 32, intermediate: 64 }
  const workload = { source: 'mixtral:c4:layer7', tokensPerBatch: 64, batches: 3 }

  it('reports the static dispatcher: slots, padding, waste factor, overflow drops, crossing bytes', async () => {
    const cfg = file('static.json', { model, policies: [], devices: 2, workload, dispatcher: { use: 'dynamic-gating', options: { mode: 'static', capacityFactor: 0.3 } } })
    const r = await cli('run', '--config', cfg, '--json')
    expect(r.code, r.err).toBe(0)
    const rep = JSON.parse(r.out) as RunReport
    const d = rep.dispatch
    expect(d.mode).toBe('static')
    expect(d.capacity).toBeGreaterThan(0)
    expect(d.paddingRows).toBeGreaterThan(0)
    const kept = rep.load.after.reduce((a, b) => a + b, 0)
    expect(d.slots - d.paddingRows).toBe(kept) // real rows are the pairs computed
    expect(d.droppedPairs).toBe(rep.droppedPairs) // no policy: every drop is the dispatcher's overflow
    expect(d.droppedPairs).toBeGreaterThan(0)
    expect(d.wasteFactor).toBeCloseTo(d.slots / (kept + d.droppedPairs!), 12)
    expect(d.bytesCrossDevice).toBeGreaterThan(0)
    const text = await cli('run', '--config', cfg, '--no-progress')
    expect(text.out).toMatch(/^dispatch +dynamic-gating \(static, capacity \d+ rows per expert\): [\d,]+ slots computed, [\d,]+ padding, waste factor \d\.\d{3}; [\d,]+ pairs dropped on overflow; [\d,]+ bytes across devices$/m)
  })

  it('reports the expert store: hits, misses, evictions, bytes and upload time', async () => {
    // decode-like batches of 2 tokens (≤ 4 experts) fit the 4 slots, so nothing bypasses the store
    const cfg = file('store.json', { model, workload: { ...workload, tokensPerBatch: 2, batches: 20 }, store: { use: 'expert-buffer', options: { slots: 4 } } })
    const r = await cli('run', '--config', cfg, '--json')
    expect(r.code, r.err).toBe(0)
    const s = (JSON.parse(r.out) as RunReport).store!
    expect(s.misses).toBeGreaterThan(0)
    expect(s.hits + s.misses).toBeGreaterThan(0)
    expect(s.hitRate).toBeCloseTo(s.hits / (s.hits + s.misses), 12)
    expect(s.bytesUploaded).toBeGreaterThan(0)
    expect(s.evictions).toBeGreaterThan(0)
    expect(s.uploadMs).toBeGreaterThanOrEqual(0)
    expect((await cli('run', '--config', cfg)).out).toMatch(/^store +hit rate [\d.]+% \([\d,]+ hits, [\d,]+ misses, [\d,]+ evictions\), [\d.]+ MiB uploaded in [\d.]+ ms$/m)
  })

  it('--metrics-port serves Prometheus metrics that a scrape reads during the run', async () => {
    const out: string[] = []
    let scrape: Promise<string> | undefined
    const ctx: CliContext = {
      out: (s) => out.push(s),
      err: (s) => {
        const url = /^serving metrics at (\S+)$/.exec(s)?.[1]
        if (url) scrape = fetch(url).then((res) => res.text())
      },
      interactive: false,
      cwd: dir,
    }
    // 60 small batches: the CLI yields to the event loop between batches, which is what lets
    // the server answer during the run (a CPU batch settles in microtasks only)
    const code = await main(['run', '--batches', '60', '--tokens', '16', '--metrics-port', '0'], ctx)
    expect(code).toBe(0)
    expect(scrape, 'the CLI named the metrics URL').toBeDefined()
    const body = await scrape!
    expect(body).toMatch(/^# TYPE moe_route_\w+ /m)
    expect(out.join('\n')).toContain('output       L2 norm')
    const bad = await cli('run', '--batches', '1', '--tokens', '8', '--metrics-port', '70000')
    expect(bad.code).toBe(1)
    expect(bad.err).toMatch(/^MOE_ROUTE_ERR_TELEMETRY_OPTIONS_INVALID: .*port/)
  })
})

describe('moe-route compare', () => {
  const base = async () => JSON.parse((await cli('run', '--json', '--batches', '2', '--tokens', '32')).out) as RunReport

  it('passes identical jobs and fails, naming what differs, beyond the tolerance', async () => {
    const a = await base()
    const fa = file('cmp-a.json', a)
    expect((await cli('compare', fa, file('cmp-a2.json', a))).code).toBe(0)
    const nudged = { ...a, output: { ...a.output, batchNorms: a.output.batchNorms.map((n, i) => (i === 1 ? n * (1 + 1e-3) : n)) } }
    expect((await cli('compare', fa, file('cmp-near.json', nudged))).code).toBe(0) // within the default 2e-3
    const far = { ...a, output: { ...a.output, batchNorms: a.output.batchNorms.map((n, i) => (i === 1 ? n * 1.01 : n)) } }
    const r = await cli('compare', fa, file('cmp-far.json', far))
    expect(r.code).toBe(1)
    expect(r.out).toMatch(/DIFFER +output norm per batch +max diff 9\.9\de-3 +\(batch 1: /)
    expect(r.err).toMatch(/^MOE_ROUTE_ERR_COMPARE_MISMATCH: .*output norm per batch/)
    expect((await cli('compare', fa, file('cmp-far2.json', far), '--rtol', '0.02')).code).toBe(0)
    const moved = { ...a, load: { ...a.load, after: a.load.after.map((l, e) => (e === 0 ? l + 1 : e === 1 ? l - 1 : l)) } }
    const m = JSON.parse((await cli('compare', fa, file('cmp-moved.json', moved), '--json')).out)
    expect(m.same).toBe(false)
    expect(m.checks.find((c: { what: string }) => c.what === 'load after policies')).toMatchObject({ ok: false, maxDiff: 1, detail: 'entry 0: ' + a.load.after[0] + ' vs ' + (a.load.after[0] + 1) })
    expect((await cli('compare', fa, file('cmp-moved2.json', moved), '--pairs-tol', '1')).code).toBe(0)
    const other = { ...a, workload: { ...a.workload, seed: 2 } }
    expect((await cli('compare', fa, file('cmp-other.json', other))).out).toMatch(/DIFFER +workload/)
  })

  it('rejects files that are not run reports', async () => {
    const r = await cli('compare', file('cmp-x.json', { hello: 1 }), file('cmp-y.json', { hello: 2 }))
    expect(r.code).toBe(1)
    expect(r.err).toMatch(/^MOE_ROUTE_ERR_INPUT_INVALID: .*cmp-x\.json is not a moe-route run --json report: \/backend\/name/)
    expect((await cli('compare', 'nope.json', 'nope2.json')).err).toMatch(/^MOE_ROUTE_ERR_FILE_NOT_FOUND/)
    expect((await cli('compare', file('cmp-z.json', await base()), file('cmp-z2.json', await base()), '--rtol', 'x')).err).toMatch(/^MOE_ROUTE_ERR_INPUT_INVALID: --rtol/)
  })
})

describe('moe-route run --backend webgpu', () => {
  const required = Boolean(process.env.CI || process.env.MOE_ROUTE_REQUIRE_WEBGPU)
  it('names the adapter and agrees with the CPU backend', async (ctx) => {
    const { probeAdapter } = await import('@moe-route/backend-webgpu')
    const adapter = await probeAdapter()
    if (!adapter) {
      if (required) throw new Error('no WebGPU adapter under CI: run scripts/install-lavapipe.sh and set XDG_RUNTIME_DIR=/tmp')
      ctx.skip('no WebGPU adapter here; install one with scripts/install-lavapipe.sh (Mesa lavapipe) to run this test')
    }
    const gpu = await cli('run', '--json', '--backend', 'webgpu', '--batches', '1', '--tokens', '64')
    expect(gpu.code, gpu.err).toBe(0)
    const g = JSON.parse(gpu.out) as RunReport
    expect(g.backend.name).toBe('webgpu')
    expect(g.backend.adapter).toBeTruthy()
    const cpu = await cli('run', '--json', '--batches', '1', '--tokens', '64')
    const c = JSON.parse(cpu.out) as RunReport
    expect(g.load).toEqual(c.load) // same routing and drops
    // f16 weights on the GPU (the default there), f32 on the CPU: same weights up to f16 rounding
    expect(Math.abs(g.output.l2Norm - c.output.l2Norm) / c.output.l2Norm).toBeLessThan(2e-3)
    // and `moe-route compare` says so at its default tolerance
    const same = await cli('compare', file('gpu.json', gpu.out), file('cpu.json', cpu.out))
    expect(same.code, same.out + same.err).toBe(0)
    // the whole configured layer ran on the device, no round trip
    expect(g.pipeline!.stages.every((s) => s.where === 'device')).toBe(true)
    expect(g.pipeline!.hostRoundTrips).toEqual({})
  }, 300_000)
})

// The LLaMA-MoE co-activation matrices @moe-route/workloads ships (c2r-moe collaboration_data),
// written with profiling.py's −1 on the diagonal: the official layout [layer][i][j].
const shipped = JSON.parse(readFileSync(new URL('../../workloads/data/llama-moe-coactivation.json', import.meta.url), 'utf8'))
const official: number[][][] = shipped.matrices.base.map((m: number[][]) => m.map((row, i) => row.map((v, j) => (i === j ? -1 : v))))
file('official.json', official)
const model = { experts: 8, topK: 2, hidden: 8, intermediate: 8, normalizeTopK: true }
const config = (options: Record<string, unknown>) => ({ model, router: { use: 'c2r', options } })

describe('c2r profile files in a config', () => {
  it('replaces profile and layer by that layer’s collaborator lists', () => {
    const raw = resolveC2rProfile(config({ topT: 5, profile: 'official.json', layer: 3 }), dir)
    expect(raw.router!.options).toEqual({ topT: 5, collaborators: profileFromCounts(official).layers[3].lists })
    expect(resolveC2rProfile(config({ topT: 5, profile: 'official.json' }), dir).router!.options!.collaborators).toEqual(profileFromCounts(official).layers[0].lists)
    const plain = config({ topT: 5, collaborators: [[1]] })
    expect(resolveC2rProfile(plain, dir)).toBe(plain)
  })

  it('routes with it: moe-route route and validate', async () => {
    const cfg = file('c2r.json', config({ topT: 1, profile: 'official.json', layer: 0, normalizeTopK: null }))
    expect((await cli('validate', '--config', cfg)).code).toBe(0)
    // Layer 0 of the base matrix: expert 3's strongest collaborator is expert 6 (47436 tokens).
    const input = file('in.json', { experts: 8, topK: 2, scores: [[0.05, 0.05, 0.3, 0.4, 0.05, 0.05, 0.05, 0.05]] })
    const r = await cli('route', '--input', input, '--config', cfg, '--json')
    expect(r.code).toBe(0)
    expect(JSON.parse(r.out).tokens[0].kept.map(([e]: [number]) => e).sort()).toEqual([3, 6])
  })

  it('names the field and the entry when the profile is bad', async () => {
    const broken = official.map((m) => m.map((row) => [...row]))
    broken[2][4][4] = -7
    file('broken.json', broken)
    const r = await cli('validate', '--config', file('bad1.json', config({ topT: 5, profile: 'broken.json', layer: 2 })), '--json')
    expect(r.code).toBe(1)
    const issues = JSON.parse(r.out).issues
    expect(issues).toHaveLength(1)
    expect(issues[0]).toMatchObject({ code: 'MOE_ROUTE_ERR_INPUT_INVALID', path: '/router/options/profile' })
    expect(issues[0].message).toContain('broken.json at /2/4/4')
    expect(issues[0].message).toContain('diagonal entry')

    const missing = await cli('run', '--config', file('bad2.json', config({ topT: 5, profile: 'nope.json' })))
    expect(missing.err).toMatch(/^MOE_ROUTE_ERR_FILE_NOT_FOUND: \/router\/options\/profile: cannot read .*nope\.json/)
    const layer = await cli('validate', '--config', file('bad3.json', config({ topT: 5, profile: 'official.json', layer: 32 })))
    expect(layer.err).toMatch(/MOE_ROUTE_ERR_INPUT_INVALID: .*\/router\/options\/layer: .*layer 32 is not in the document \(layers 0\.\.31\)/)
    const both = await cli('validate', '--config', file('bad4.json', config({ topT: 5, profile: 'official.json', collaborators: [] })))
    expect(both.err).toMatch(/MOE_ROUTE_ERR_CONFIG_INVALID: .*\/router\/options\/collaborators: give either/)
    const notJson = await cli('validate', '--config', file('bad5.json', config({ topT: 5, profile: file('p.json', '{ [') })))
    expect(notJson.err).toMatch(/MOE_ROUTE_ERR_CONFIG_PARSE: .*\/router\/options\/profile: .*p\.json is not valid JSON/)
  })
})
