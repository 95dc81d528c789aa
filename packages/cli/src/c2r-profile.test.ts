import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { profileFromCounts } from '@moe-route/policy-c2r'
import { describe, expect, it } from 'vitest'
import type { CliContext } from './context.js'
import { main } from './main.js'
import { resolveC2rProfile } from './c2r-profile.js'

const dir = mkdtempSync(join(tmpdir(), 'moe-cli-c2r-'))
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
