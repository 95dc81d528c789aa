// Every sample config in examples/configs/ validates (schema, plugins, options) and runs the
// command its first line names, through the real CLI: a sample that stops working fails here.
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { main, type CliContext } from '@moe-route/cli'
import { describe, expect, it } from 'vitest'

const root = new URL('../..', import.meta.url).pathname
const dir = join(root, 'examples/configs')
const configs = readdirSync(dir).filter((f) => f.endsWith('.jsonc'))

async function cli(...argv: string[]) {
  const out: string[] = []
  const err: string[] = []
  const ctx: CliContext = { out: (s) => out.push(s), err: (s) => err.push(s), interactive: false, cwd: root }
  const code = await main(argv, ctx)
  return { code, out: out.join('\n'), err: err.join('\n') }
}

describe('examples/configs', () => {
  it('has a sample for each command that takes --config', () => {
    const commands = new Set(configs.map((f) => /^\/\/ moe-route (\w+)/.exec(readFileSync(join(dir, f), 'utf8'))?.[1]))
    for (const c of ['run', 'route', 'simulate']) expect(commands, `a sample config for ${c}`).toContain(c)
  })

  it.each(configs)('%s validates and runs the command on its first line', async (f) => {
    const text = readFileSync(join(dir, f), 'utf8')
    expect(text, `${f} is commented`).toMatch(/^\/\/ moe-route \w+/)
    const v = await cli('validate', '--config', `examples/configs/${f}`)
    expect(v.code, v.err).toBe(0)
    // the command as the first line writes it, shortened where it would take long here
    const argv = /^\/\/ moe-route (.*)$/m.exec(text)![1].split(/\s+/).filter((a) => a && !a.startsWith('--report') && !a.endsWith('.html'))
    if (argv[0] === 'run') argv.push('--batches', '2', '--json')
    if (argv[0] === 'simulate' || argv[0] === 'route') argv.push('--json')
    const r = await cli(...argv)
    expect(r.code, r.err).toBe(0)
    const doc = JSON.parse(r.out)
    if (argv[0] === 'run') {
      expect(doc.config).toBe(join(root, 'examples/configs', f))
      if (f.includes('static')) expect(doc.dispatch.paddingRows).toBeGreaterThan(0)
      if (f.includes('expert-buffer')) expect(doc.store.misses).toBeGreaterThan(0)
    }
    if (argv[0] === 'route') expect(doc.tokens).toHaveLength(4)
    if (argv[0] === 'simulate') expect(doc.summary.devices).toBe(8)
    const plugins = await cli('plugins', '--config', `examples/configs/${f}`, '--json')
    expect(plugins.code, plugins.err).toBe(0)
  }, 60_000)
})
