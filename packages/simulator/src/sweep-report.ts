/**
 * The chart of a parameter sweep: one self-contained HTML page with hand-written SVG (no chart
 * library, no scripts), four panels — layer latency, speed-up, dropped fraction and all-to-all
 * bytes per layer call — over the first swept key, one line per combination of the others.
 */
import type { SimulationSummary } from './simulator.js'

/** One point of a sweep: its settings (key → value) and the run's summary. */
export interface SweepPoint {
  readonly settings: Readonly<Record<string, string>>
  readonly summary: SimulationSummary
}

/** A finished sweep. */
export interface SweepResult {
  /** Swept keys in command-line order; the first is the chart's x axis. */
  readonly keys: readonly string[]
  /** Values of each key, in command-line order. */
  readonly values: Readonly<Record<string, readonly string[]>>
  readonly points: readonly SweepPoint[]
}

/** The metrics a sweep reports per point. */
export const SWEEP_METRICS = [
  { id: 'latencyMs', label: 'layer latency, mean (ms)', zero: false, of: (s: SimulationSummary) => s.latencyMs.mean },
  { id: 'speedup', label: 'speed-up vs no policy (×)', zero: false, of: (s: SimulationSummary) => s.speedup },
  { id: 'droppedFraction', label: 'dropped fraction (%)', zero: true, of: (s: SimulationSummary) => s.droppedFraction * 100 },
  { id: 'a2aBytes', label: 'all-to-all per layer call (MB)', zero: false, of: (s: SimulationSummary) => s.a2aBytes / Math.max(1, s.batches) / 1e6 },
] as const

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!)
const COLORS = ['#3a6ea5', '#d9822b', '#3c9d5d', '#b8423b', '#7d5ba6', '#8c6d31', '#cc5b9a', '#5f6b6d', '#2aa1b3', '#a8a838']

/** A readable number: 3 significant digits, no exponent for everyday magnitudes. */
function num(x: number): string {
  if (!Number.isFinite(x)) return '–'
  const a = Math.abs(x)
  if (a === 0) return '0'
  if (a >= 1000) return Math.round(x).toLocaleString('en-US')
  return x.toPrecision(3).replace(/\.?0+$/, (m) => (m.includes('.') ? '' : m))
}

/** Nice tick values covering [lo, hi]. */
function ticks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) {
    const pad = Math.abs(lo) > 0 ? Math.abs(lo) * 0.1 : 1
    return ticks(lo - pad, hi + pad, n)
  }
  const raw = (hi - lo) / n
  const mag = 10 ** Math.floor(Math.log10(raw))
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag
  const out: number[] = []
  for (let v = Math.floor(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toFixed(12))
  if (out[out.length - 1] < hi) out.push(out[out.length - 1] + step)
  return out
}

/** The series of a sweep: one per combination of the keys after the first, with its points by x value. */
export function sweepSeries(sweep: SweepResult): { label: string; points: (SweepPoint | undefined)[] }[] {
  const [xKey, ...rest] = sweep.keys
  const xs = sweep.values[xKey]
  const series = new Map<string, (SweepPoint | undefined)[]>()
  for (const p of sweep.points) {
    const label = rest.map((k) => `${k}=${p.settings[k]}`).join(', ') || 'all points'
    let row = series.get(label)
    if (!row) series.set(label, (row = new Array<SweepPoint | undefined>(xs.length).fill(undefined)))
    row[xs.indexOf(p.settings[xKey])] = p
  }
  return [...series].map(([label, points]) => ({ label, points }))
}

function panel(sweep: SweepResult, metric: (typeof SWEEP_METRICS)[number], series: ReturnType<typeof sweepSeries>): string {
  const W = 440
  const H = 250
  const m = { l: 70, r: 16, t: 28, b: 48 }
  const xKey = sweep.keys[0]
  const xs = sweep.values[xKey]
  const values = series.flatMap((s) => s.points.filter((p): p is SweepPoint => p !== undefined).map((p) => metric.of(p.summary)))
  const finite = values.filter(Number.isFinite)
  // dropped fraction starts at 0; the others span their values (their differences are the point)
  const lo0 = metric.zero ? Math.min(0, ...finite) : Math.min(...finite)
  const hi0 = Math.max(...finite, lo0)
  const tv = ticks(lo0, hi0)
  const lo = tv[0]
  const hi = tv[tv.length - 1]
  const px = (i: number) => m.l + (xs.length === 1 ? (W - m.l - m.r) / 2 : (i / (xs.length - 1)) * (W - m.l - m.r))
  const py = (v: number) => m.t + (1 - (v - lo) / (hi - lo || 1)) * (H - m.t - m.b)
  const parts: string[] = []
  parts.push(`<text x="${W / 2}" y="16" font-size="13" font-weight="600" text-anchor="middle">${esc(metric.label)}</text>`)
  for (const v of tv) {
    parts.push(`<line x1="${m.l}" x2="${W - m.r}" y1="${py(v).toFixed(1)}" y2="${py(v).toFixed(1)}" stroke="#e3e3e3"/>`)
    parts.push(`<text x="${m.l - 6}" y="${(py(v) + 4).toFixed(1)}" font-size="11" text-anchor="end">${esc(num(v))}</text>`)
  }
  parts.push(`<line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${H - m.b}" stroke="#555"/><line x1="${m.l}" x2="${W - m.r}" y1="${H - m.b}" y2="${H - m.b}" stroke="#555"/>`)
  xs.forEach((x, i) => parts.push(`<text x="${px(i).toFixed(1)}" y="${H - m.b + 16}" font-size="11" text-anchor="middle">${esc(x)}</text>`))
  parts.push(`<text x="${(m.l + W - m.r) / 2}" y="${H - 8}" font-size="12" text-anchor="middle">${esc(xKey)}</text>`)
  parts.push(`<text transform="translate(14 ${(m.t + H - m.b) / 2}) rotate(-90)" font-size="12" text-anchor="middle">${esc(metric.label)}</text>`)
  series.forEach((s, k) => {
    const color = COLORS[k % COLORS.length]
    const pts = s.points.map((p, i) => (p && Number.isFinite(metric.of(p.summary)) ? [px(i), py(metric.of(p.summary)), metric.of(p.summary)] : null))
    const line = pts.filter((p): p is number[] => p !== null).map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`)
    if (line.length > 1) parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${line.join(' ')}"/>`)
    for (const p of pts) {
      if (p) parts.push(`<circle cx="${p[0].toFixed(1)}" cy="${p[1].toFixed(1)}" r="3.5" fill="${color}"><title>${esc(s.label)}: ${esc(num(p[2]))}</title></circle>`)
    }
  })
  return `<svg width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" xmlns="http://www.w3.org/2000/svg" role="img" aria-label="${esc(metric.label)} over ${esc(xKey)}">${parts.join('')}</svg>`
}

/** Renders a sweep as an HTML page: settings, a legend, four SVG panels (y axes span the values; dropped fraction from 0) and the table of points. */
export function renderSweepReport(sweep: SweepResult, title = 'moe-route simulate --sweep'): string {
  const series = sweepSeries(sweep)
  const legend = series
    .map((s, k) => `<span style="margin-right:1.4em;white-space:nowrap"><svg width="22" height="10"><line x1="0" x2="22" y1="5" y2="5" stroke="${COLORS[k % COLORS.length]}" stroke-width="3"/></svg> ${esc(s.label)}</span>`)
    .join('')
  const head = [...sweep.keys, 'latency (ms)', 'baseline (ms)', 'speed-up', 'dropped', 'all-to-all / call (MB)', 'tokens']
  const rows = sweep.points.map((p) => [
    ...sweep.keys.map((k) => p.settings[k]),
    num(p.summary.latencyMs.mean),
    num(p.summary.baselineLatencyMs.mean),
    p.summary.speedup.toFixed(3),
    `${(p.summary.droppedFraction * 100).toFixed(2)}%`,
    num(SWEEP_METRICS[3].of(p.summary)),
    p.summary.tokens.toLocaleString('en-US'),
  ])
  const first = sweep.points[0]?.summary
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:1000px;color:#222}table{border-collapse:collapse;margin-top:1em}td,th{padding:2px 10px;border-bottom:1px solid #eee;text-align:right;white-space:nowrap}td:first-child,th:first-child{text-align:left}.panels{display:grid;grid-template-columns:repeat(2,440px);gap:16px}svg{background:#fafafa;border:1px solid #ddd}</style>
</head><body>
<h1>${esc(title)}</h1>
<p>${sweep.points.length} points: ${sweep.keys.map((k) => `<b>${esc(k)}</b> ∈ {${sweep.values[k].map(esc).join(', ')}}`).join(' × ')}${first ? ` · ${first.tokens.toLocaleString('en-US')} tokens, ${first.experts} experts per point` : ''}. Speed-up and dropped fraction are against the same routing without policies.</p>
<p>${legend}</p>
<div class="panels">${SWEEP_METRICS.map((m) => panel(sweep, m, series)).join('')}</div>
<table><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr>${rows.map((r) => `<tr>${r.map((c) => `<td>${esc(c)}</td>`).join('')}</tr>`).join('')}</table>
<p style="color:#888">Charts are hand-written SVG generated by @moe-route/simulator.</p>
</body></html>
`
}
