import { spawn, spawnSync } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { runService } from './service.mjs'

const root = fileURLToPath(new URL('../..', import.meta.url))
const main = fileURLToPath(new URL('./main.mjs', import.meta.url))
const built = () => expect(existsSync(`${root}/packages/telemetry/dist/index.js`), 'run the build first (npm test does)').toBe(true)

/** Values of a Prometheus text exposition, by series (`name{labels}` as written). */
function parseExposition(text: string): Map<string, number> {
  const out = new Map<string, number>()
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue
    const i = line.lastIndexOf(' ')
    out.set(line.slice(0, i), Number(line.slice(i + 1)))
  }
  return out
}

describe('examples/metrics-service', () => {
  it('runs the job of `moe-route run` (same drops, gate mass and layer output as the CLI)', () => {
    built()
    const cli = spawnSync(process.execPath, [`${root}/packages/cli/dist/bin.js`, 'run', '--batches', '2', '--tokens', '64', '--json', '--no-progress'], { encoding: 'utf8' })
    expect(cli.status, cli.stderr).toBe(0)
    const svc = spawnSync(process.execPath, [main, '--no-metrics', '--batches', '2', '--tokens', '64', '--json'], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } })
    expect(svc.status, svc.stderr).toBe(0)
    expect(svc.stderr).toBe('') // nothing served without metrics
    const a = JSON.parse(cli.stdout)
    const b = JSON.parse(svc.stdout)
    expect([b.tokens, b.pairs, b.droppedPairs, b.gateMassKept]).toEqual([a.tokens, a.pairs, a.droppedPairs, a.gateMassKept])
    expect(b.output.l2Norm).toBe(a.output.l2Norm)
    expect(b.maxMeanLoad.after.mean).toBe(a.maxMeanLoad.after.mean)
    expect(b.metricsUrl).toBeNull()
  })

  it('answers scrapes during the run, not only after it', async () => {
    built()
    const child = spawn(process.execPath, [main, '--port', '0', '--batches', '6', '--tokens', '256', '--linger', '0', '--json'], { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } })
    let stderr = ''
    const seen: number[] = []
    let polling = true
    child.stderr.setEncoding('utf8').on('data', (d) => (stderr += d))
    const exited = new Promise((resolve) => child.once('exit', resolve))
    void exited.then(() => (polling = false))
    while (polling) {
      const url = /serving (\S+)/.exec(stderr)?.[1]
      if (url) {
        try {
          const batches = parseExposition(await (await fetch(url)).text()).get('moe_route_batches_total')
          if (batches !== undefined) seen.push(batches)
        } catch {
          // the run ended between two polls
        }
      }
      await new Promise((resolve) => setTimeout(resolve, 50))
    }
    expect(await exited).toBe(0)
    expect(seen.some((b) => b > 0 && b < 6), `batches seen by scrapes: ${seen.join(' ')}`).toBe(true)
  })

  it('serves the report\'s values at the end of the run', async () => {
    built()
    const scraped: Map<string, number>[] = []
    let url = ''
    const pending: Promise<void>[] = []
    const report = await runService({
      batches: 3,
      tokens: 64,
      port: 0,
      onListening: (u) => (url = u),
      // Scrape after each batch, while the run goes on.
      onBatch: () => void pending.push(fetch(url).then(async (r) => void scraped.push(parseExposition(await r.text())))),
    })
    try {
      await Promise.all(pending)
      expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/)
      expect(scraped.length).toBe(3)
      const final = parseExposition(await (await fetch(url)).text())
      expect(final.get('moe_route_batches_total')).toBe(3)
      expect(final.get('moe_route_tokens_total')).toBe(report.tokens)
      expect(final.get('moe_route_pairs_dropped_total')).toBe(report.droppedPairs)
      expect(final.get('moe_route_policy_pairs_dropped_total{policy="capacity-drop",reason="capacity"}')).toBe(report.droppedPairs)
      expect(final.get('moe_route_batch_balancedness_sum{pairs="computed"}')! / 3).toBeCloseTo(report.balancedness.after.mean, 12)
      expect(final.get('moe_route_balancedness_ratio{pairs="computed"}')).toBeCloseTo(report.balancedness.last.after, 12)
      expect(final.get('moe_route_stage_duration_seconds_count{stage="experts"}')).toBe(3)
    } finally {
      await report.server?.close()
    }
  })

  it('npm start: prints the report and exits after --linger; a bad option exits 2 with a coded message', () => {
    built()
    const r = spawnSync(process.execPath, [main, '--port', '0', '--batches', '1', '--tokens', '32', '--linger', '0'], { encoding: 'utf8', env: { ...process.env, NODE_OPTIONS: '' } })
    expect(r.status, r.stderr).toBe(0)
    expect(r.stderr).toMatch(/^serving http:\/\/127\.0\.0\.1:\d+\/metrics\n$/)
    expect(r.stdout).toMatch(/^moe-route metrics-service: mixtral:c4:layer7, 1 × 32 tokens = 32 tokens\ndropped {6}\d+ of 64 pairs/)
    const bad = spawnSync(process.execPath, [main, '--port', '99999'], { encoding: 'utf8' })
    expect(bad.status).toBe(2)
    expect(bad.stderr).toMatch(/^MOE_ROUTE_ERR_INPUT_INVALID: --port must be an integer in 0\.\.65535, got 99999/)
  })
})
