/** Text rendering helpers for CLI reports (tables and bar histograms). */
import { textTable } from '@moe-route/core'

/** A horizontal bar of `width` cells for value/max. */
export function bar(value: number, max: number, width = 24): string {
  const cells = max <= 0 ? 0 : Math.round((value / max) * width)
  return '█'.repeat(cells) + ' '.repeat(width - cells)
}

/** Formats a number with a fixed number of decimals, or an integer with thousands separators. */
export function fmt(n: number, decimals = 0): string {
  return decimals === 0 ? Math.round(n).toLocaleString('en-US') : n.toFixed(decimals)
}

/** A percentage with two decimals. */
export const pct = (x: number): string => `${(x * 100).toFixed(2)}%`

/** Renders rows as an aligned table (first row = header): core's `textTable`. */
export const table: (rows: readonly (readonly (string | number)[])[]) => string = textTable

/** Per-expert load before/after as paired bar histograms. */
export function loadHistogram(before: readonly number[], after: readonly number[]): string {
  const max = Math.max(1, ...before, ...after)
  const w = String(Math.round(max)).length
  const lines = [`  ${'expert'.padEnd(7)}${'before'.padEnd(25 + w)} after`]
  before.forEach((b, e) => {
    const a = after[e] ?? 0
    lines.push(`  e${String(e).padEnd(6)}${bar(b, max)} ${String(Math.round(b)).padStart(w)}  ${bar(a, max)} ${String(Math.round(a)).padStart(w)}`)
  })
  return lines.join('\n')
}
