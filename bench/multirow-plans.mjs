#!/usr/bin/env node
/**
 * The multi-row decode plan table from a `webgpu-layer.bench.ts --multirow-sweep` log: for each
 * swept T of the first shape (Mixtral-8x7B), the fastest layout (wall ms back to back, dynamic
 * routing) becomes the plan for typical groups up to that T's rows per expert (ceil(T·k/E));
 * a typical group of one row keeps the single-row GEMV kernels. Prints the table as JSON
 * (`MultiRowPlan[]`, the layer's `multiRowPlans` option; DEFAULT_MULTIROW_PLANS holds the
 * committed one) and, per T, the best layout against the single-row kernels.
 *
 * Usage: node bench/multirow-plans.mjs sweep.log [--shape mixtral-8x7b] > plans.json
 */
import { readFileSync } from 'node:fs'

const [logPath, ...rest] = process.argv.slice(2)
if (!logPath) {
  console.error('usage: node bench/multirow-plans.mjs sweep.log [--shape label]')
  process.exit(2)
}
const si = rest.indexOf('--shape')
const lines = readFileSync(logPath, 'utf8').split('\n').filter((l) => l.startsWith('{'))
const rows = lines.map((l) => { try { return JSON.parse(l) } catch { return null } }).filter((r) => r && r.sweep === 'multirow' && typeof r.ms === 'number')
const shape = si >= 0 ? rest[si + 1] : rows[0]?.shape
const mine = rows.filter((r) => r.shape === shape)
const byT = new Map()
for (const r of mine) (byT.get(r.T) ?? byT.set(r.T, []).get(r.T)).push(r)
const parse = (v) => {
  const m = /^mt(\d+)\/nr(\d+)\/ks(\d+)\/cpt(\d+)$/.exec(v)
  return m ? { mt: +m[1], nr: +m[2], ks: +m[3], cpt: +m[4] } : null
}
const plans = [{ maxRows: 1, gateup: { mt: 0, nr: 0, ks: 0, cpt: 0 }, down: { mt: 0, nr: 0, ks: 0, cpt: 0 } }]
for (const T of [...byT.keys()].sort((a, b) => a - b)) {
  const rs = byT.get(T)
  const single = rs.find((r) => r.variant === 'single-row')
  const best = rs.filter((r) => parse(r.variant)).sort((a, b) => a.ms - b.ms)[0]
  if (!best) continue
  const l = parse(best.variant)
  plans.push({ maxRows: best.rowsHint, gateup: l, down: l })
  console.error(`${shape} T=${T} rows/expert ${best.rowsHint}: best ${best.variant} ${best.ms.toFixed(3)} ms vs single-row ${single ? single.ms.toFixed(3) : '–'} ms`)
}
console.log(JSON.stringify(plans))
