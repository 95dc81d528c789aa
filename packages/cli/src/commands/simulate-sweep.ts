/**
 * `moe-route simulate --sweep`: the Cartesian product of `key=v1,v2,…` settings, one simulation
 * per point (each spread over worker threads like a single run), a progress bar over all the
 * batches, then one table (text or JSON) and one chart (HTML with SVG panels).
 */
import { ErrorCodes, MoeError } from '@moe-route/core'
import { renderSweepReport, SWEEP_METRICS, type BatchSimulation, type SimulationResult, type SweepResult } from '@moe-route/simulator'
import type { CliContext } from '../context.js'
import { createProgress } from '../progress.js'
import { fmt, pct, table } from '../report.js'
import type { SweepSetting } from './simulate-job.js'

/** Parsed `--sweep` options: keys in order with their values. */
export interface SweepSpec {
  readonly keys: readonly string[]
  readonly values: Readonly<Record<string, readonly string[]>>
}

/** Parses `--sweep key=v1,v2` options (each key once, at least one value each). */
export function parseSweeps(options: readonly string[]): SweepSpec {
  const keys: string[] = []
  const values: Record<string, string[]> = {}
  for (const o of options) {
    const eq = o.indexOf('=')
    const key = eq > 0 ? o.slice(0, eq).trim() : ''
    const list = eq > 0 ? o.slice(eq + 1).split(',').map((v) => v.trim()) : []
    if (!key || list.length === 0 || list.some((v) => v === '')) {
      throw new MoeError(ErrorCodes.INPUT_INVALID, `--sweep '${o}' is not key=v1,v2,… (e.g. capacityFactor=1,1.25,1.5)`, { path: '--sweep' })
    }
    if (key in values) throw new MoeError(ErrorCodes.INPUT_INVALID, `--sweep names '${key}' twice`, { path: '--sweep' })
    keys.push(key)
    values[key] = list
  }
  return { keys, values }
}

/** Every combination of the settings, the last key varying fastest. */
export function sweepPoints(spec: SweepSpec): SweepSetting[][] {
  let points: SweepSetting[][] = [[]]
  for (const key of spec.keys) points = points.flatMap((p) => spec.values[key].map((value) => [...p, { key, value }]))
  return points
}

/** A finished sweep with its renderings. */
export interface SweepRun extends SweepResult {
  readonly html: string
  readonly json: unknown
  readonly setups: readonly SimulationResult['setup'][]
}

/** Runs every point through `simulate` with one progress bar for the whole sweep. */
export async function runSweep(
  spec: SweepSpec,
  simulate: (settings: readonly SweepSetting[], onBatch: (b: BatchSimulation) => void) => Promise<SimulationResult>,
  ctx: CliContext,
  title: string,
): Promise<SweepRun> {
  const points = sweepPoints(spec)
  // the first point tells how many batches a point has (every point has the config's count)
  let bar: ReturnType<typeof createProgress> | null = null
  let tokens = 0
  const results: SimulationResult[] = []
  try {
    for (const settings of points) {
      const r = await simulate(settings, (b) => {
        tokens += b.tokens
        bar?.tick(1, { tokens: fmt(tokens) })
      })
      if (!bar) {
        bar = createProgress(ctx, true, r.summary.batches * points.length, 'batches')
        bar.tick(r.summary.batches, { tokens: fmt(tokens) })
      }
      results.push(r)
    }
  } finally {
    bar?.stop()
  }
  const sweep: SweepResult = {
    keys: spec.keys,
    values: spec.values,
    points: points.map((settings, i) => ({ settings: Object.fromEntries(settings.map((s) => [s.key, s.value])), summary: results[i].summary })),
  }
  const json = {
    sweep: spec.keys.map((k) => ({ key: k, values: spec.values[k] })),
    points: sweep.points.map((p, i) => ({
      settings: p.settings,
      setup: results[i].setup,
      metrics: Object.fromEntries(SWEEP_METRICS.map((m) => [m.id, m.of(p.summary)])),
      summary: p.summary,
    })),
  }
  return { ...sweep, html: renderSweepReport(sweep, `moe-route simulate --sweep (${title})`), json, setups: results.map((r) => r.setup) }
}

/** The sweep's text table: one row per point. */
export function renderSweep(sweep: SweepRun): string {
  const rows: string[][] = [[...sweep.keys, 'latency ms', 'baseline ms', 'speed-up', 'dropped', 'a2a MB/call', 'sim s']]
  for (const p of sweep.points) {
    const s = p.summary
    rows.push([
      ...sweep.keys.map((k) => p.settings[k]),
      s.latencyMs.mean.toFixed(3),
      s.baselineLatencyMs.mean.toFixed(3),
      s.speedup.toFixed(3),
      pct(s.droppedFraction),
      (s.a2aBytes / Math.max(1, s.batches) / 1e6).toFixed(1),
      s.wallSeconds.toFixed(2),
    ])
  }
  const first = sweep.points[0]?.summary
  return [`sweep of ${sweep.points.length} points${first ? ` · ${fmt(first.tokens)} tokens, ${first.experts} experts, ${fmt(first.batches)} batches per point` : ''}`, '', table(rows)].join('\n')
}
