import { spawnSync } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { contiguousPlacement } from '@moe-route/core'
import { createTokenDrop } from '@moe-route/policy-capacity/capacity-drop'
import { simulateSync } from '@moe-route/simulator'
import { uniformWorkload } from '@moe-route/workloads'
import { describe, expect, it } from 'vitest'
import { cliHarness } from './test-utils.js'

const { dir, file, cli } = cliHarness('moe-simulate-')
const model = { experts: 16, topK: 4, hidden: 256, intermediate: 512, normalizeTopK: true }
const config = file('sim.json', {
  model,
  devices: 4,
  policies: [{ use: 'capacity-drop', options: { capacityFactor: 1.0 } }],
  workload: { source: 'uniform:E=16:k=4', tokensPerBatch: 256, batches: 6, seed: 3 },
  seed: 1,
})
const timeless = ({ wallSeconds: _w, tokensPerSecond: _t, ...rest }: Record<string, unknown>) => rest

describe('moe-route simulate (workload specs as routings)', () => {
  it('gives what the library gives for the same routings', async () => {
    const r = await cli('simulate', '-c', config, '--json', '--workers', '1')
    expect(r.code).toBe(0)
    const cliSummary = JSON.parse(r.out).summary
    const lib = simulateSync(uniformWorkload(16, 4).routings({ tokensPerBatch: 256, batches: 6, seed: 3 }), {
      model,
      placement: contiguousPlacement(16, 4),
      policies: [createTokenDrop({ capacityFactor: 1.0 })],
      seed: 1,
    }).summary
    expect(timeless(cliSummary)).toEqual(JSON.parse(JSON.stringify(timeless(lib as unknown as Record<string, unknown>))))
    expect(cliSummary.droppedFraction).toBeGreaterThan(0)
  })

  const bin = resolve(dirname(fileURLToPath(import.meta.url)), '../dist/bin.js')
  it.runIf(existsSync(bin))('makes identical results with 1 and 3 worker threads (the built CLI)', () => {
    const run = (workers: number) => {
      const p = spawnSync(process.execPath, [bin, 'simulate', '-c', config, '--json', '--workers', String(workers)], { encoding: 'utf8', cwd: dir })
      expect(p.stderr).toBe('')
      expect(p.status).toBe(0)
      const j = JSON.parse(p.stdout)
      return { ...j, summary: timeless(j.summary) }
    }
    const one = run(1)
    expect(run(3)).toEqual(one)
    expect(one.summary.batches).toBe(6)
  })

  it('builds learned placements on the first half and simulates the second', async () => {
    const learned = file('learned.json', { ...JSON.parse(readFileSync(config, 'utf8')), placement: { use: 'eplb' } })
    const r = await cli('simulate', '-c', learned, '--json', '--workers', '1')
    expect(r.code).toBe(0)
    expect(JSON.parse(r.out).summary.batches).toBe(3)
    expect(JSON.parse(r.out).setup.placement).toMatch(/eplb/)
  })
})

describe('moe-route simulate --sweep', () => {
  it('runs every combination and prints one table, JSON and an SVG chart', async () => {
    const report = join(dir, 'sweep.html')
    const r = await cli('simulate', '-c', config, '--sweep', 'capacityFactor=0.5,1,2', '--sweep', 'devices=2,4', '--json', '--report', report, '--workers', '1')
    expect(r.code).toBe(0)
    const j = JSON.parse(r.out)
    expect(j.sweep).toEqual([
      { key: 'capacityFactor', values: ['0.5', '1', '2'] },
      { key: 'devices', values: ['2', '4'] },
    ])
    expect(j.points.map((p: { settings: object }) => p.settings)).toEqual([
      { capacityFactor: '0.5', devices: '2' },
      { capacityFactor: '0.5', devices: '4' },
      { capacityFactor: '1', devices: '2' },
      { capacityFactor: '1', devices: '4' },
      { capacityFactor: '2', devices: '2' },
      { capacityFactor: '2', devices: '4' },
    ])
    const dropped = j.points.map((p: { metrics: { droppedFraction: number } }) => p.metrics.droppedFraction)
    expect(dropped[0]).toBeGreaterThan(dropped[2])
    expect(dropped[2]).toBeGreaterThan(dropped[4])
    expect(j.points[1].summary.devices).toBe(4)
    const html = readFileSync(report, 'utf8')
    expect(html.match(/<svg width="440"/g)?.length).toBe(4)
    for (const label of ['layer latency, mean (ms)', 'speed-up vs no policy', 'dropped fraction (%)', 'all-to-all per layer call (MB)', 'devices=2', 'devices=4', '>capacityFactor<']) expect(html).toContain(label)
    const text = await cli('simulate', '-c', config, '--sweep', 'policies=capacity-drop,none', '--workers', '1')
    expect(text.code).toBe(0)
    expect(text.out).toMatch(/policies\s+latency ms/)
    expect(text.out).toMatch(/none\s/)
  })

  it('applies a capacity factor to the stack a policies setting chose, whatever the option order', async () => {
    const r = await cli('simulate', '-c', config, '--sweep', 'capacityFactor=0.5,2', '--sweep', 'policies=device-capacity', '--json', '--workers', '1')
    expect(r.code).toBe(0)
    const [tight, loose] = JSON.parse(r.out).points.map((p: { metrics: { droppedFraction: number } }) => p.metrics.droppedFraction)
    expect(tight).toBeGreaterThan(0.2)
    expect(loose).toBe(0)
  })

  it('sets dotted config paths', async () => {
    const r = await cli('simulate', '-c', config, '--sweep', 'workload.tokensPerBatch=128,512', '--json', '--workers', '1')
    expect(r.code).toBe(0)
    expect(JSON.parse(r.out).points.map((p: { summary: { tokens: number } }) => p.summary.tokens)).toEqual([6 * 128, 6 * 512])
  })

  for (const [args, why] of [
    [['--sweep', 'capacityFactor'], /not key=v1,v2/],
    [['--sweep', 'devices=2,'], /not key=v1,v2/],
    [['--sweep', 'devices=2', '--sweep', 'devices=4'], /names 'devices' twice/],
    [['--sweep', 'devices=0'], /not a positive integer/],
    [['--sweep', 'capacityFactor=-1'], /capacity factor > 0/],
    [['--sweep', '__proto__.polluted=1'], /not a config key/],
    [['--sweep', 'policies=no-such-policy'], /unknown policy plugin 'no-such-policy'/],
  ] as const) {
    it(`rejects ${args.join(' ')} with a clear error`, async () => {
      const r = await cli('simulate', '-c', config, ...args, '--workers', '1')
      expect(r.code).toBe(1)
      expect(r.err).toMatch(/^MOE_ROUTE_ERR_/)
      expect(r.err).toMatch(why)
      expect(({} as Record<string, unknown>).polluted).toBeUndefined()
    })
  }

  it('refuses a capacity-factor sweep over a stack without capacity', async () => {
    const none = file('none.json', { ...JSON.parse(readFileSync(config, 'utf8')), policies: [] })
    const r = await cli('simulate', '-c', none, '--sweep', 'capacityFactor=1,2')
    expect(r.code).toBe(1)
    expect(r.err).toMatch(/no policy of the config takes a capacityFactor/)
  })
})
