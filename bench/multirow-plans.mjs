#!/usr/bin/env node
/**
 * The multi-row decode plan table from a `webgpu-layer.bench.ts --multirow-sweep` log: for each
 * swept T of the first shape (Mixtral-8x7B), the fastest layout becomes the plan for typical
 * groups up to that T's rows per expert (ceil(T·k/E)) — gate+up and down chosen separately by
 * their kernel's GPU time (timestamp queries) where the log has it, else both by the layer's
 * wall ms; the single-row GEMV kernels where their two kernels are faster than the best pair
 * (a sweep at T = 1 decides the one-row plan; without one it stays single-row). One shape, so no
 * `minK` rows (those come from comparing shapes by hand). Prints the table as
 * JSON (`MultiRowPlan[]`, the layer's `multiRowPlans` option; DEFAULT_MULTIROW_PLANS holds the
 * committed one) and, per T, the best layouts against the single-row kernels.
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
// the sweep prints each variant's layout (`layout`); logs written before it had only the label
// (`mtM/nrN/ksS/cptC[/wrW]`), read here for the committed older results
const parse = (r) => {
  if (r.layout) return r.layout
  const m = /^mt(\d+)\/nr(\d+)\/ks(\d+)\/cpt(\d+)(?:\/wr(\d+))?$/.exec(r.variant)
  if (!m) return null
  const l = { mt: +m[1], nr: +m[2], ks: +m[3], cpt: +m[4] }
  return m[5] && +m[5] > 1 ? { ...l, wr: +m[5] } : l
}
/** GPU ms of the variant's kernel whose name contains `part`, or null. */
const kernelMs = (r, part) => {
  const hit = Object.entries(r.kernels ?? {}).find(([k]) => k.includes(part))
  return hit ? hit[1] : null
}
const plans = [{ maxRows: 1, gateup: { mt: 0, nr: 0, ks: 0, cpt: 0 }, down: { mt: 0, nr: 0, ks: 0, cpt: 0 } }] // replaced by a T = 1 sweep's row
for (const T of [...byT.keys()].sort((a, b) => a - b)) {
  const rs = byT.get(T)
  const single = rs.find((r) => r.variant === 'single-row')
  const layouts = rs.filter((r) => parse(r))
  if (!layouts.length) continue
  const byWall = [...layouts].sort((a, b) => a.ms - b.ms)[0]
  const bestBy = (part) => {
    const timed = layouts.filter((r) => kernelMs(r, part) !== null)
    return timed.length ? timed.sort((a, b) => kernelMs(a, part) - kernelMs(b, part))[0] : byWall
  }
  const gu = bestBy('multirow-gate-up')
  const dn = bestBy('multirow-down')
  // the single-row GEMV kernels where they are faster than the best multi-row pair (one row per group, T = 1)
  const pair = (kernelMs(gu, 'multirow-gate-up') ?? NaN) + (kernelMs(dn, 'multirow-down') ?? NaN)
  const singleMs = single ? (kernelMs(single, 'gemv-gate-up') ?? NaN) + (kernelMs(single, 'gemv-down') ?? NaN) : NaN
  const off = { mt: 0, nr: 0, ks: 0, cpt: 0 }
  const useSingle = singleMs < pair
  const row = { maxRows: byWall.rowsHint, gateup: useSingle ? off : parse(gu), down: useSingle ? off : parse(dn) }
  if (plans.length && plans[plans.length - 1].maxRows === row.maxRows) plans[plans.length - 1] = row
  else plans.push(row)
  const ms = (r, part) => (kernelMs(r, part) ?? NaN).toFixed(3)
  console.error(
    `${shape} T=${T} rows/expert ${byWall.rowsHint}: gate+up ${gu.variant} ${ms(gu, 'multirow-gate-up')} ms, down ${dn.variant} ${ms(dn, 'multirow-down')} ms (GPU)${useSingle ? `; single-row kernels faster (${singleMs.toFixed(3)} ms)` : ''}; ` +
      `best single layout ${byWall.variant} ${byWall.ms.toFixed(3)} ms wall vs single-row ${single ? single.ms.toFixed(3) : '–'} ms`,
  )
}
console.log(JSON.stringify(plans))
