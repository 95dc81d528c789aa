import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { profileFromCounts } from '@moe-route/policy-c2r'
import { describe, expect, it } from 'vitest'
import { resolveC2rProfile } from './c2r-profile.js'
import type { CliContext } from './context.js'
import { main } from './main.js'
import type { RunReport } from './commands/run.js'

const dir = mkdtempSync(join(tmpdir(), 'moe-cli-'))
const file = (name: string, content: unknown) => {
  const p = join(dir, name)
  writeFileSync(p, typeof content === 'string' ? content : JSON.stringify(content))
  return p
}

async function cli(...argv: string[]) {
  const out: string[] = []
  const err: string[] = []
  const ctx: CliContext = { out: (s) => out.push(s), err: (s) => err.push(s), interactive: false, cwd: dir }
  const code = await main(argv, ctx)
  return { code, out: out.join('\n'), err: err.join('\n') }
}

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

  it('without a config routes plain top-k', async () => {
    const r = await cli('route', '--input', file('in2.json', { ...input, topK: 2 }), '--json')
    const o = JSON.parse(r.out)
    expect(o.capacity).toBeNull()
    expect(o.tokens[2].kept.map((p: number[]) => p[0])).toEqual([0, 1])
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
    const c = JSON.parse((await cli('run', '--json', '--batches', '1', '--tokens', '64')).out) as RunReport
    expect(g.load).toEqual(c.load) // same routing and drops
    // f16 weights on the GPU (the default there), f32 on the CPU: same weights up to f16 rounding
    expect(Math.abs(g.output.l2Norm - c.output.l2Norm) / c.output.l2Norm).toBeLessThan(2e-3)
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
