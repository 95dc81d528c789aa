/**
 * Fixed-width text tables for terminal reports (the CLI's tables, the cache simulation's
 * miss-rate table): the one renderer, so every report aligns the same way.
 */

/**
 * Renders rows as a fixed-width table: the first column left-aligned, the others
 * right-aligned (numbers line up on their last digit), columns two spaces apart. A short row
 * leaves its missing cells blank (padded). Cells are converted with `String`.
 *
 * @example
 * textTable([['policy', 'drops'], ['capacity-drop', 12], ['reroute', 3]])
 * // policy         drops
 * // capacity-drop     12
 * // reroute            3
 */
export function textTable(rows: readonly (readonly (string | number)[])[]): string {
  if (rows.length === 0) return ''
  const cells = rows.map((r) => r.map(String))
  const columns = Math.max(...cells.map((r) => r.length))
  const widths = Array.from({ length: columns }, (_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)))
  return cells.map((r) => widths.map((w, i) => (i === 0 ? (r[i] ?? '').padEnd(w) : (r[i] ?? '').padStart(w))).join('  ')).join('\n')
}
