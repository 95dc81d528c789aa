import { spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'

const script = fileURLToPath(new URL('./check.mjs', import.meta.url))
const root = fileURLToPath(new URL('../..', import.meta.url))

describe.each(['esm', 'cjs'])('built dist (%s)', (mode) => {
  it('loads every package and resolves the container with every built-in', () => {
    expect(existsSync(`${root}/packages/core/dist/index.js`), 'run the build first (npm test does)').toBe(true)
    const r = spawnSync(process.execPath, [script, mode], { cwd: root, encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } })
    expect(r.stderr).toBe('')
    expect(r.status).toBe(0)
    const out = JSON.parse(r.stdout)
    expect(out.byKind.router).toContain('softmax-top-k')
    expect(out.byKind.backend).toContain('cpu')
    expect(out.byKind.policy).toEqual(expect.arrayContaining(['capacity-drop', 'expanded-drop', 'reroute', 'device-capacity', 'expert-drop', 'spare-capacity-reroute']))
    expect(out.resolved.filter((s: string) => s.startsWith('policy:')).length).toBe(out.byKind.policy.length)
  })
})
