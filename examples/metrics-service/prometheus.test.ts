/**
 * End to end against a real Prometheus: start one on a free loopback port with a temporary
 * config (0.5 s scrape interval) and storage dir, run the example service while Prometheus
 * scrapes it, then read the values back through Prometheus's HTTP API (/api/v1/query) and
 * compare them with the run's own report. Everything is bounded in time and removed after.
 * Without a prometheus binary the test skips (and says how to get one), except under CI=true,
 * where it fails.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { accessSync, constants, existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { delimiter, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, it } from 'vitest'

const root = fileURLToPath(new URL('../..', import.meta.url))
const main = fileURLToPath(new URL('./main.mjs', import.meta.url))
const HOW_TO_GET = 'sudo bash scripts/install-prometheus.sh (Debian/Ubuntu: apt-get install prometheus), or set PROMETHEUS_BIN to a prometheus binary'

/** The prometheus binary: $PROMETHEUS_BIN, else the first on PATH. */
function findPrometheus(): string | undefined {
  const candidates = process.env.PROMETHEUS_BIN ? [process.env.PROMETHEUS_BIN] : (process.env.PATH ?? '').split(delimiter).filter(Boolean).map((d) => join(d, 'prometheus'))
  return candidates.find((p) => {
    try {
      accessSync(p, constants.X_OK)
      return true
    } catch {
      return false
    }
  })
}

/** A free TCP port on 127.0.0.1 (closed again before use; the window for a race is tiny). */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer().once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
  })
}

/** Polls `probe` every `everyMs` until it returns a value other than undefined, or fails after `ms`. */
async function waitFor<T>(what: string, ms: number, probe: () => Promise<T | undefined>, everyMs = 200): Promise<T> {
  const end = Date.now() + ms
  let last: unknown
  for (;;) {
    try {
      const v = await probe()
      if (v !== undefined) return v
    } catch (e) {
      last = e
    }
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}${last ? ` (last error: ${String(last)})` : ''}`)
    await new Promise((r) => setTimeout(r, everyMs))
  }
}

/** Output of a child process, collected; `exited` resolves with its exit code. */
function start(cmd: string, args: string[]) {
  const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, NODE_OPTIONS: '' } })
  const out = { stdout: '', stderr: '' }
  child.stdout!.setEncoding('utf8').on('data', (d) => (out.stdout += d))
  child.stderr!.setEncoding('utf8').on('data', (d) => (out.stderr += d))
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  return { child, out, exited }
}

/** Stops a child: SIGTERM, then SIGKILL if it is still there after 5 s. */
async function stop(p: { child: ChildProcess; exited: Promise<unknown> } | undefined): Promise<void> {
  if (!p || p.child.exitCode !== null || p.child.signalCode !== null) return
  p.child.kill('SIGTERM')
  const killed = setTimeout(() => p.child.kill('SIGKILL'), 5000)
  await p.exited
  clearTimeout(killed)
}

const prometheus = findPrometheus()
const cleanups: (() => Promise<void> | void)[] = []
afterAll(async () => {
  for (const c of cleanups.reverse()) await c()
})

describe('examples/metrics-service scraped by a real Prometheus', () => {
  it('Prometheus reads back the run report: tokens, drops, balancedness', { timeout: 150_000 }, async (ctx) => {
    if (!prometheus) {
      if (process.env.CI === 'true') throw new Error(`CI=true but no prometheus binary was found: ${HOW_TO_GET}`)
      console.warn(`skipped: no prometheus binary; to run this test: ${HOW_TO_GET}`)
      ctx.skip(`no prometheus binary: ${HOW_TO_GET}`)
      return
    }
    expect(existsSync(`${root}/packages/telemetry/dist/index.js`), 'run the build first (npm test does)').toBe(true)
    const dir = mkdtempSync(join(tmpdir(), 'moe-route-prometheus-'))
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }))
    const [promPort, servicePort] = [await freePort(), await freePort()]
    writeFileSync(
      join(dir, 'prometheus.yml'),
      [
        'global:',
        '  scrape_interval: 500ms',
        '  scrape_timeout: 500ms',
        'scrape_configs:',
        '  - job_name: moe-route',
        '    static_configs:',
        `      - targets: ['127.0.0.1:${servicePort}']`,
        '',
      ].join('\n'),
    )
    const prom = start(prometheus, [
      `--config.file=${join(dir, 'prometheus.yml')}`,
      `--storage.tsdb.path=${join(dir, 'data')}`,
      `--web.listen-address=127.0.0.1:${promPort}`,
      '--log.level=warn',
    ])
    cleanups.push(() => stop(prom))
    const api = `http://127.0.0.1:${promPort}`
    await waitFor('Prometheus to be ready', 30_000, async () => {
      if (prom.child.exitCode !== null) throw new Error(`prometheus exited with ${prom.child.exitCode}: ${prom.out.stderr.slice(-2000)}`)
      return (await fetch(`${api}/-/ready`)).ok || undefined
    })

    // 8 batches of 128 tokens with 1 s between them: about 7 s of scraping while it runs (with
    // 400 ms, about 3 s, a loaded machine's Prometheus sometimes began scraping only after the run).
    const service = start(process.execPath, [main, '--port', String(servicePort), '--batches', '8', '--tokens', '128', '--interval-ms', '1000', '--linger', '120', '--json'])
    cleanups.push(() => stop(service))
    const report = await waitFor('the service report', 90_000, async () => {
      if (service.child.exitCode !== null) throw new Error(`service exited with ${service.child.exitCode}: ${service.out.stderr}`)
      return service.out.stdout.includes('\n') ? JSON.parse(service.out.stdout) : undefined
    })
    expect(service.out.stderr).toBe(`serving http://127.0.0.1:${servicePort}/metrics\n`)

    const query = async (promql: string): Promise<{ metric: Record<string, string>; value: [number, string] }[]> => {
      const r = await fetch(`${api}/api/v1/query?query=${encodeURIComponent(promql)}`)
      const body = (await r.json()) as { status: string; error?: string; data: { result: { metric: Record<string, string>; value: [number, string] }[] } }
      if (body.status !== 'success') throw new Error(`${promql}: ${body.error}`)
      return body.data.result
    }
    const scalar = async (promql: string): Promise<number> => {
      const result = await query(promql)
      expect(result, promql).toHaveLength(1)
      return Number(result[0].value[1])
    }
    // Wait for a scrape that started after the run finished: its samples hold the final values.
    await waitFor('a scrape after the run finished', 20_000, async () => {
      const r = await query('timestamp(moe_route_tokens_total)')
      return r.length === 1 && Number(r[0].value[1]) * 1000 >= report.finishedAt ? true : undefined
    })

    expect(await scalar('up{job="moe-route"}')).toBe(1)
    expect(await scalar('moe_route_batches_total')).toBe(8)
    expect(await scalar('moe_route_tokens_total')).toBe(report.tokens)
    expect(await scalar('moe_route_pairs_routed_total')).toBe(report.pairs)
    expect(report.droppedPairs).toBeGreaterThan(0)
    expect(await scalar('moe_route_pairs_dropped_total')).toBe(report.droppedPairs)
    expect(await scalar('sum(moe_route_policy_pairs_dropped_total{policy="capacity-drop",reason="capacity"})')).toBe(report.droppedPairs)
    expect(await scalar('moe_route_batch_balancedness_sum{pairs="computed"} / moe_route_batch_balancedness_count{pairs="computed"}')).toBeCloseTo(report.balancedness.after.mean, 12)
    expect(await scalar('moe_route_batch_balancedness_sum{pairs="routed"} / moe_route_batch_balancedness_count{pairs="routed"}')).toBeCloseTo(report.balancedness.before.mean, 12)
    expect(await scalar('moe_route_balancedness_ratio{pairs="computed"}')).toBeCloseTo(report.balancedness.last.after, 12)
    // Scraped while it ran: the batch counter changed between samples (at least once: on a
    // loaded machine Prometheus may start its scrape loop late into the 7 s run).
    expect(await scalar('changes(moe_route_batches_total[5m])')).toBeGreaterThanOrEqual(1)
    // Every Grafana panel query of docs/observability.md is valid PromQL and has data (a rate
    // needs two samples, which we have), except the panel of events this run has none of.
    const panels = [...readFileSync(`${root}/docs/observability.md`, 'utf8').matchAll(/^\| ([^|]+) \| `([^`]+)` \|/gm)].map(([, panel, q]) => ({ panel, q: q.replaceAll('$__rate_interval', '5m') }))
    expect(panels.length).toBeGreaterThanOrEqual(10)
    for (const { panel, q } of panels) {
      const result = await query(q)
      if (panel.startsWith('Fallbacks') || panel.startsWith('Device pipeline')) expect(result, panel).toEqual([])
      else expect(result.length, `${panel}: ${q}`).toBeGreaterThan(0)
    }
    expect(await scalar('histogram_quantile(0.99, sum by (le) (rate(moe_route_stage_duration_seconds_bucket{stage="total"}[5m])))')).toBeGreaterThan(0)
  })
})
