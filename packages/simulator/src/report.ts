/**
 * A self-contained HTML report of a simulation: hand-written SVG (no chart library, no
 * scripts, no network) — per-device load over batches as a heatmap, the latency
 * distribution against the baseline, and C_T per batch.
 */
import { maxOf, minOf } from '@moe-route/core'
import type { SimulationResult } from './simulator.js'

const esc = (s: string) => s.replace(/[&<>"]/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;' })[c]!)
const f = (n: number, d = 3) => (Number.isFinite(n) ? n.toFixed(d) : '–')
/** A percentage as the CLI prints it (two decimals). */
const pct = (x: number) => (Number.isFinite(x) ? `${(x * 100).toFixed(2)}%` : '–')

function layerName(result: SimulationResult): string {
  const m = result.setup.model
  if (!m) return `${result.summary.experts} experts`
  return `${m.name ? `${m.name}: ` : ''}E ${m.experts}, top-${m.topK}, H ${m.hidden}, I ${m.intermediate}`
}

/** Renders the report. `title` goes in the page heading. */
export function renderReport(result: SimulationResult, title = 'moe-route expert-parallel simulation'): string {
  const s = result.summary
  const rows: [string, string][] = [
    ['batches / tokens', `${s.batches} / ${s.tokens}`],
    ['devices / experts', `${s.devices} / ${s.experts}`],
    ['placement', result.setup.placement],
    ['policies', result.setup.policies.join(' → ') || '(none)'],
    ['baseline', result.setup.baseline.join(' → ') || '(router only)'],
    ['layer latency mean / p95 (ms)', `${f(s.latencyMs.mean)} / ${f(s.latencyMs.p95)}`],
    ['baseline latency mean / p95 (ms)', `${f(s.baselineLatencyMs.mean)} / ${f(s.baselineLatencyMs.p95)}`],
    ['speedup', f(s.speedup)],
    ['Max Load / Avg Max Load', `${f(s.maxLoad)} / ${f(s.avgMaxLoad)} (ideal ${f(1 / s.devices)})`],
    ['C_T (baseline)', `${f(s.cT)} (${f(s.baselineCT)})`],
    ['intra-collaboration', f(s.intraCollaboration)],
    ['all-to-all bytes', `${s.a2aBytes.toExponential(3)} (baseline ${s.baselineA2aBytes.toExponential(3)})`],
    ['dropped pairs', pct(s.droppedFraction)],
    ['layer simulated', layerName(result)],
    ['cost model calibrated on', `${result.setup.cost} (scaled to the layer simulated by its weight bytes and FLOPs)`],
    ['link model', result.setup.link],
  ]
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>${esc(title)}</title>
<style>body{font:14px system-ui,sans-serif;margin:2em;max-width:1000px;color:#222}table{border-collapse:collapse}td{padding:2px 10px;border-bottom:1px solid #eee}h2{margin-top:1.6em}svg{background:#fff;border:1px solid #ddd;font-family:system-ui,sans-serif}</style>
</head><body>
<h1>${esc(title)}</h1>
<table>${rows.map(([k, v]) => `<tr><td>${esc(k)}</td><td>${esc(v)}</td></tr>`).join('')}</table>
<h2>Per-device load over batches</h2>
<p>Each device's share of a batch's rows against the ideal share 1/D (${pct(1 / result.summary.devices)}): white is ideal, red above it, blue below; hover a cell for its numbers.</p>
${heatmap(result)}
<h2>Layer latency distribution</h2>
<p>Batches by layer latency (dispatch + slowest device + combine), with the policy stack and without it (baseline).</p>
${histogram(result.batches.map((b) => b.latencyMs), result.batches.map((b) => b.baselineLatencyMs))}
<h2>C_T per batch</h2>
<p>Mean number of devices each token is sent to, per batch.</p>
${lines(result.batches.map((b) => b.cT), result.batches.map((b) => b.baselineCT), result.batches.map((b) => b.batchId))}
<p style="color:#888">Charts are SVG written by @moe-route/simulator (no scripts, no network).</p>
</body></html>
`
}

const BLUE = '#3a6ea5'
const GREY = '#999'

/** About `n` round tick values covering [lo, hi] (1, 2 or 5 × a power of ten apart). */
export function niceTicks(lo: number, hi: number, n = 5): number[] {
  if (!(hi > lo)) return [lo]
  const raw = (hi - lo) / n
  const p = 10 ** Math.floor(Math.log10(raw))
  const step = [1, 2, 5, 10].map((m) => m * p).find((x) => x >= raw * (1 - 1e-9)) ?? 10 * p
  const out: number[] = []
  for (let v = Math.ceil(lo / step - 1e-9) * step; v <= hi + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)))
  return out
}

const tickLabel = (v: number) => (Math.abs(v) >= 1000 ? v.toExponential(1) : String(Number(v.toPrecision(4))))

/** Axes, ticks and titles of a plot area (x0, y0 top left, w × h). */
function axes(o: { x0: number; y0: number; w: number; h: number; xTicks: [number, string][]; yTicks: [number, string][]; xTitle: string; yTitle: string }): string {
  const { x0, y0, w, h } = o
  const parts = [
    `<line x1="${x0}" y1="${y0 + h}" x2="${x0 + w}" y2="${y0 + h}" stroke="#333"/>`,
    `<line x1="${x0}" y1="${y0}" x2="${x0}" y2="${y0 + h}" stroke="#333"/>`,
    ...o.xTicks.map(([x, t]) => `<line x1="${x.toFixed(1)}" y1="${y0 + h}" x2="${x.toFixed(1)}" y2="${y0 + h + 4}" stroke="#333"/><text x="${x.toFixed(1)}" y="${y0 + h + 16}" font-size="11" text-anchor="middle">${esc(t)}</text>`),
    ...o.yTicks.map(([y, t]) => `<line x1="${x0 - 4}" y1="${y.toFixed(1)}" x2="${x0 + w}" y2="${y.toFixed(1)}" stroke="#eee"/><text x="${x0 - 6}" y="${(y + 4).toFixed(1)}" font-size="11" text-anchor="end">${esc(t)}</text>`),
    `<text x="${x0 + w / 2}" y="${y0 + h + 34}" font-size="12" text-anchor="middle">${esc(o.xTitle)}</text>`,
    `<text x="14" y="${y0 + h / 2}" font-size="12" text-anchor="middle" transform="rotate(-90 14 ${y0 + h / 2})">${esc(o.yTitle)}</text>`,
  ]
  return parts.join('')
}

/** A legend of coloured swatches at (x, y). */
function legend(x: number, y: number, items: [string, string][]): string {
  return items.map(([color, label], i) => `<rect x="${x}" y="${y + i * 18}" width="14" height="10" fill="${color}"/><text x="${x + 20}" y="${y + i * 18 + 9}" font-size="12">${esc(label)}</text>`).join('')
}

/** Batch-index ticks: about ten, at round batch numbers. */
function batchTicks(ids: readonly number[], xOf: (i: number) => number): [number, string][] {
  if (ids.length === 0) return []
  return niceTicks(0, ids.length - 1, Math.min(10, ids.length - 1) || 1)
    .filter((i) => Number.isInteger(i) && i < ids.length)
    .map((i) => [xOf(i), String(ids[i])])
}

/** A colour on the diverging scale: blue (t = -1), white (0), red (+1). */
function diverging(t: number): string {
  const c = Math.max(-1, Math.min(1, t))
  const [r, g, b] = c >= 0 ? [178, 24, 43] : [33, 102, 172]
  const a = Math.abs(c)
  const mix = (v: number) => Math.round(255 + (v - 255) * a)
  return `rgb(${mix(r)},${mix(g)},${mix(b)})`
}

function heatmap(result: SimulationResult): string {
  const B = result.batches.length
  const D = result.summary.devices
  if (B === 0) return '<p>(no batches kept)</p>'
  const m = { l: 56, r: 150, t: 10, b: 44 }
  const w = 760
  const h = Math.min(420, Math.max(120, D * 14))
  const cw = w / B
  const ch = h / D
  const ideal = 1 / D
  const ratios = result.batches.map((b) => {
    const total = b.deviceRows.reduce((a, v) => a + v, 0) || 1
    return b.deviceRows.map((v) => v / total / ideal)
  })
  // symmetric around the ideal share, at least ±5%
  const span = Math.max(0.05, ...ratios.flat().map((r) => Math.abs(r - 1)))
  const cells: string[] = []
  ratios.forEach((row, i) =>
    row.forEach((r, d) => {
      cells.push(`<rect x="${(m.l + i * cw).toFixed(2)}" y="${(m.t + d * ch).toFixed(2)}" width="${(cw + 0.3).toFixed(2)}" height="${(ch + 0.3).toFixed(2)}" fill="${diverging((r - 1) / span)}"><title>batch ${result.batches[i].batchId}, device d${d}: ${pct(r * ideal)} of the rows (${f(r, 2)}× the ideal ${pct(ideal)})</title></rect>`)
    }),
  )
  const every = Math.max(1, Math.ceil(12 / ch))
  const yTicks: [number, string][] = Array.from({ length: D }, (_, d) => d)
    .filter((d) => d % every === 0)
    .map((d) => [m.t + (d + 0.5) * ch, `d${d}`])
  const xTicks = batchTicks(result.batches.map((b) => b.batchId), (i) => m.l + (i + 0.5) * cw)
  // colour legend: a vertical bar from ideal·(1-span) to ideal·(1+span)
  const lx = m.l + w + 24
  const lh = h
  const steps = 40
  const bar = Array.from({ length: steps }, (_, k) => {
    const t = 1 - (2 * k) / (steps - 1)
    return `<rect x="${lx}" y="${(m.t + (k / steps) * lh).toFixed(2)}" width="16" height="${(lh / steps + 0.5).toFixed(2)}" fill="${diverging(t)}"/>`
  }).join('')
  const lab = (t: number) => `<text x="${lx + 22}" y="${(m.t + ((1 - t) / 2) * lh + 4).toFixed(1)}" font-size="11">${pct(ideal * (1 + t * span))}${t === 0 ? ' (ideal)' : ''}</text>`
  const legendSvg = `${bar}<rect x="${lx}" y="${m.t}" width="16" height="${lh}" fill="none" stroke="#999"/>${lab(1)}${lab(0)}${lab(-1)}<text x="${lx}" y="${m.t + lh + 18}" font-size="11">share of rows</text>`
  return `<svg width="${m.l + w + m.r}" height="${m.t + h + m.b}" xmlns="http://www.w3.org/2000/svg">${cells.join('')}${axes({ x0: m.l, y0: m.t, w, h, xTicks, yTicks, xTitle: 'batch', yTitle: 'device' })}${legendSvg}</svg>`
}

function histogram(a: readonly number[], b: readonly number[]): string {
  if (a.length === 0) return '<p>(no batches kept)</p>'
  const lo = Math.min(minOf(a), minOf(b))
  const hi = Math.max(maxOf(a), maxOf(b))
  const bins = 30
  const width = (hi - lo) / bins || 1
  const count = (xs: readonly number[]) => {
    const h = new Array<number>(bins).fill(0)
    for (const x of xs) h[Math.min(bins - 1, Math.floor((x - lo) / width))]++
    return h
  }
  const ha = count(a)
  const hb = count(b)
  const yMax = Math.max(maxOf(ha), maxOf(hb), 1)
  const m = { l: 56, r: 150, t: 10, b: 44 }
  const w = 760
  const h = 220
  const bw = w / bins
  const yOf = (v: number) => m.t + h - (v / yMax) * h
  const xOf = (ms: number) => m.l + ((ms - lo) / (width * bins)) * w
  const bars = (hs: number[], color: string, dx: number, what: string) =>
    hs.map((v, i) => (v === 0 ? '' : `<rect x="${(m.l + i * bw + dx).toFixed(1)}" y="${yOf(v).toFixed(1)}" width="${(bw / 2 - 1).toFixed(1)}" height="${(h - (yOf(v) - m.t)).toFixed(1)}" fill="${color}"><title>${what}: ${v} batch${v === 1 ? '' : 'es'} at ${f(lo + i * width)}–${f(lo + (i + 1) * width)} ms</title></rect>`)).join('')
  const yTicks: [number, string][] = niceTicks(0, yMax, Math.min(5, yMax)).filter((v) => Number.isInteger(v)).map((v) => [yOf(v), String(v)])
  const xTicks: [number, string][] = niceTicks(lo, lo + width * bins, 6).map((v) => [xOf(v), tickLabel(v)])
  return `<svg width="${m.l + w + m.r}" height="${m.t + h + m.b}" xmlns="http://www.w3.org/2000/svg">${axes({ x0: m.l, y0: m.t, w, h, xTicks, yTicks, xTitle: 'layer latency (ms)', yTitle: 'batches' })}${bars(hb, GREY, 0, 'baseline')}${bars(ha, BLUE, bw / 2, 'policy stack')}${legend(m.l + w + 20, m.t + 4, [[BLUE, 'policy stack'], [GREY, 'baseline']])}</svg>`
}

function lines(a: readonly number[], b: readonly number[], ids: readonly number[] = a.map((_, i) => i)): string {
  if (a.length === 0) return '<p>(no batches kept)</p>'
  const m = { l: 56, r: 150, t: 10, b: 44 }
  const w = 760
  const h = 200
  const finite = [...a, ...b].filter(Number.isFinite)
  if (finite.length === 0) return '<p>(C_T is unknown for counts-only records)</p>'
  let lo = minOf(finite)
  let hi = maxOf(finite)
  const pad = Math.max((hi - lo) * 0.1, 0.01 * Math.max(1, hi))
  lo -= pad
  hi += pad
  const ticks = niceTicks(lo, hi, 5)
  lo = Math.min(lo, ticks[0])
  hi = Math.max(hi, ticks[ticks.length - 1])
  const xOf = (i: number) => m.l + (a.length === 1 ? w / 2 : (i / (a.length - 1)) * w)
  const yOf = (v: number) => m.t + h - ((v - lo) / (hi - lo)) * h
  const pts = (xs: readonly number[]) => xs.map((v, i) => `${xOf(i).toFixed(1)},${yOf(v).toFixed(1)}`).join(' ')
  const yTicks: [number, string][] = ticks.map((v) => [yOf(v), tickLabel(v)])
  return `<svg width="${m.l + w + m.r}" height="${m.t + h + m.b}" xmlns="http://www.w3.org/2000/svg">${axes({ x0: m.l, y0: m.t, w, h, xTicks: batchTicks(ids, xOf), yTicks, xTitle: 'batch', yTitle: 'devices per token (C_T)' })}<polyline fill="none" stroke="${GREY}" stroke-width="2" points="${pts(b)}"><title>baseline</title></polyline><polyline fill="none" stroke="${BLUE}" stroke-width="2" points="${pts(a)}"><title>policy stack</title></polyline>${legend(m.l + w + 20, m.t + 4, [[BLUE, 'policy stack'], [GREY, 'baseline']])}</svg>`
}
