/**
 * Renders a {@link CacheSimTable}: a fixed-width text table (what the CLI prints) and a
 * hand-written SVG line plot of miss rate against slots, one line per policy (no plotting
 * dependency; the SVG is plain XML any browser shows).
 */
import { textTable } from '@moe-route/core'
import type { CacheSimTable } from './simulate-cache.js'

const pct = (x: number) => `${(100 * x).toFixed(1)}%`

/**
 * One row per slot count, one miss-rate column per policy, then the static memory saved.
 * @example
 * console.log(formatCacheTable(simulateCache(trace, { slots: [1, 2, 4], policies: ['lifo', 'belady'] })))
 */
export function formatCacheTable(table: CacheSimTable): string {
  const policies = [...new Set(table.rows.map((r) => r.policy))]
  const slots = [...new Set(table.rows.map((r) => r.slots))].sort((a, b) => a - b)
  const header = ['slots', ...policies, 'static saved']
  const lines: string[][] = [header]
  for (const s of slots) {
    const row = [String(s)]
    let saved = 0
    for (const p of policies) {
      const r = table.rows.find((x) => x.policy === p && x.slots === s)
      row.push(r ? pct(r.missRate) : '')
      if (r) saved = r.staticMemorySaved
    }
    row.push(pct(saved))
    lines.push(row)
  }
  const title = `miss rate (${table.batches} batches, E=${table.experts}, ${table.devices} device${table.devices > 1 ? 's' : ''}, ${table.layers.length} layer${table.layers.length > 1 ? 's' : ''}${table.trace ? `, ${table.trace}` : ''})`
  return `${title}\n${textTable(lines)}`
}

const COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#ff7f0e', '#9467bd', '#8c564b', '#e377c2', '#7f7f7f', '#17becf']
const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;')

/** Options of {@link cacheTableSvg}. */
export interface CacheSvgOptions {
  readonly width?: number
  readonly height?: number
  readonly title?: string
  /** Plot `worstMissRate` instead of `missRate`. */
  readonly worst?: boolean
}

const DASHES = ['', '8 4', '2 3', '10 3 2 3', '4 4', '1 2']

/** The i-th marker shape (circle, square, triangle, diamond, cross) at (x, y). */
function marker(i: number, x: number, y: number, color: string): string {
  const r = 3.5
  switch (i % 5) {
    case 0:
      return `<circle cx="${x.toFixed(1)}" cy="${y.toFixed(1)}" r="${r}" fill="${color}"/>`
    case 1:
      return `<rect x="${(x - r).toFixed(1)}" y="${(y - r).toFixed(1)}" width="${2 * r}" height="${2 * r}" fill="${color}"/>`
    case 2:
      return `<polygon points="${x.toFixed(1)},${(y - r - 1).toFixed(1)} ${(x + r + 1).toFixed(1)},${(y + r).toFixed(1)} ${(x - r - 1).toFixed(1)},${(y + r).toFixed(1)}" fill="${color}"/>`
    case 3:
      return `<polygon points="${x.toFixed(1)},${(y - r - 1).toFixed(1)} ${(x + r + 1).toFixed(1)},${y.toFixed(1)} ${x.toFixed(1)},${(y + r + 1).toFixed(1)} ${(x - r - 1).toFixed(1)},${y.toFixed(1)}" fill="${color}"/>`
    default:
      return `<path d="M${x - r},${y - r}L${x + r},${y + r}M${x - r},${y + r}L${x + r},${y - r}" stroke="${color}" stroke-width="2"/>`
  }
}

/**
 * An SVG line plot (miss rate, 0–100%, against slots per device) of a simulator table.
 * Hand-written SVG: axes, grid, one polyline with markers per policy, and a legend.
 */
export function cacheTableSvg(table: CacheSimTable, options: CacheSvgOptions = {}): string {
  const W = options.width ?? 640
  const H = options.height ?? 400
  const m = { l: 56, r: 150, t: 36, b: 44 }
  const pw = W - m.l - m.r
  const ph = H - m.t - m.b
  const policies = [...new Set(table.rows.map((r) => r.policy))]
  const slots = [...new Set(table.rows.map((r) => r.slots))].sort((a, b) => a - b)
  const sMin = slots[0] ?? 1
  const sMax = slots[slots.length - 1] ?? 1
  const x = (s: number) => m.l + (sMax === sMin ? pw / 2 : ((s - sMin) / (sMax - sMin)) * pw)
  const y = (v: number) => m.t + (1 - v) * ph
  const out: string[] = []
  out.push(`<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`)
  out.push(`<rect width="${W}" height="${H}" fill="#fff"/>`)
  // the trace's file name, not the path it was given by (relative to wherever the command ran)
  const traceName = table.trace ? table.trace.split(/[\\/]/).pop() : undefined
  const title = options.title ?? `${options.worst ? 'Worst-case miss rate' : 'Miss rate'} vs slots per device (E=${table.experts}${traceName ? `, ${traceName}` : ''})`
  out.push(`<text x="${W / 2}" y="20" text-anchor="middle" font-size="14">${esc(title)}</text>`)
  for (let i = 0; i <= 5; i++) {
    const v = i / 5
    out.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`)
    out.push(`<text x="${m.l - 6}" y="${y(v) + 4}" text-anchor="end">${Math.round(v * 100)}%</text>`)
  }
  const step = Math.max(1, Math.ceil(slots.length / 16))
  slots.forEach((s, i) => {
    if (i % step !== 0 && i !== slots.length - 1) return
    out.push(`<text x="${x(s)}" y="${m.t + ph + 16}" text-anchor="middle">${s}</text>`)
  })
  out.push(`<line x1="${m.l}" x2="${m.l}" y1="${m.t}" y2="${m.t + ph}" stroke="#000"/>`)
  out.push(`<line x1="${m.l}" x2="${m.l + pw}" y1="${m.t + ph}" y2="${m.t + ph}" stroke="#000"/>`)
  out.push(`<text x="${m.l + pw / 2}" y="${H - 8}" text-anchor="middle">slots per device</text>`)
  out.push(`<text x="14" y="${m.t + ph / 2}" text-anchor="middle" transform="rotate(-90 14 ${m.t + ph / 2})">miss rate</text>`)
  policies.forEach((p, i) => {
    const color = COLORS[i % COLORS.length]!
    const pts = table.rows
      .filter((r) => r.policy === p)
      .sort((a, b) => a.slots - b.slots)
      .map((r) => [x(r.slots), y(options.worst ? r.worstMissRate : r.missRate)] as const)
    // Lines that coincide stay visible: each is drawn thinner than the one before it (a wider
    // line shows as a halo around a later one on top), with its own dash pattern and marker.
    const dashPattern = p === 'belady' ? '5 3' : DASHES[i % DASHES.length]!
    const dash = dashPattern ? ` stroke-dasharray="${dashPattern}"` : ''
    const widthPx = Math.max(1.5, 5 - i * 0.9)
    out.push(`<polyline fill="none" stroke="${color}" stroke-width="${widthPx}" stroke-opacity="0.9"${dash} points="${pts.map(([a, b]) => `${a.toFixed(1)},${b.toFixed(1)}`).join(' ')}"><title>${esc(p)}</title></polyline>`)
    for (const [a, b] of pts) out.push(marker(i, a, b, color))
    const ly = m.t + 10 + i * 18
    const last = table.rows.filter((r) => r.policy === p).sort((a, b) => b.slots - a.slots)[0]
    out.push(`<line x1="${m.l + pw + 12}" x2="${m.l + pw + 36}" y1="${ly}" y2="${ly}" stroke="${color}" stroke-width="${widthPx}"${dash}/>`)
    out.push(marker(i, m.l + pw + 24, ly, color))
    out.push(`<text x="${m.l + pw + 42}" y="${ly + 4}">${esc(p)}${last ? `: ${Math.round((options.worst ? last.worstMissRate : last.missRate) * 1000) / 10}% at ${last.slots}` : ''}</text>`)
  })
  out.push('</svg>')
  return out.join('\n') + '\n'
}
