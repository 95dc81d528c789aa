/**
 * `moe-route compare a.json b.json`: whether two `moe-route run --json` reports describe the same
 * job with the same result, within a stated tolerance. Routing numbers (per-expert load before
 * and after the policies, dropped, rerouted and added pairs) are integers both backends compute
 * from the same scores: they must match exactly unless `--pairs-tol` allows a difference. The
 * output is compared through the per-batch L2 norms, relatively: the WebGPU backend keeps expert
 * weights in f16 and the CPU reference in f32, so outputs differ by about 1e-3 relative
 * (relative L2 below 2e-3 at the Mixtral shape; the difference of two norms is at most the norm of the difference, so the default `--rtol` 2e-3 covers it).
 */
import { ErrorCodes, MoeError } from '@moe-route/core'
import type { Command } from 'commander'
import { resolve } from 'node:path'
import type { CliContext } from '../context.js'
import { readJsonFile } from '@moe-route/core/node'
import type { RunReport } from './run.js'

/** Default relative tolerance on output norms (f16 device weights against the f32 CPU reference). */
export const DEFAULT_NORM_RTOL = 2e-3

/** Tolerances of {@link compareReports}. */
export interface CompareTolerance {
  /** Relative tolerance on each batch's output L2 norm and on the whole output's. */
  readonly rtol: number
  /** Absolute tolerance, in pairs, on loads and on dropped, rerouted and added pairs. */
  readonly pairs: number
}

/** One compared quantity. */
export interface CompareCheck {
  readonly what: string
  readonly ok: boolean
  /** Largest difference found (relative for norms, pairs for counts; 0 or 1 for equality checks). */
  readonly maxDiff: number
  readonly tolerance: number
  /** What differs, when it does. */
  readonly detail?: string
}

/** What `compare --json` prints. */
export interface CompareResult {
  readonly same: boolean
  readonly a: { readonly file: string; readonly backend: string }
  readonly b: { readonly file: string; readonly backend: string }
  readonly tolerance: CompareTolerance
  readonly checks: readonly CompareCheck[]
}

/** Registers `compare`. */
export function register(program: Command, ctx: CliContext): void {
  program
    .command('compare')
    .description('compare two `run --json` reports (e.g. CPU and WebGPU) within a tolerance; exits non-zero when they differ')
    .argument('<a>', 'first report (moe-route run --json > a.json)')
    .argument('<b>', 'second report')
    .option('--rtol <x>', `relative tolerance on per-batch output L2 norms (default ${DEFAULT_NORM_RTOL}: f16 device weights vs the f32 CPU differ by ~1e-3)`)
    .option('--pairs-tol <n>', 'pairs by which loads and drop counts may differ (default 0: exact)')
    .option('--json', 'print the comparison as JSON')
    .action((a: string, b: string, flags: { rtol?: string; pairsTol?: string; json?: boolean }) => {
      const tol: CompareTolerance = { rtol: numberOption(flags.rtol, '--rtol') ?? DEFAULT_NORM_RTOL, pairs: numberOption(flags.pairsTol, '--pairs-tol') ?? 0 }
      const ra = readReport(resolve(ctx.cwd, a), a)
      const rb = readReport(resolve(ctx.cwd, b), b)
      const result: CompareResult = { ...compareReports(ra, rb, tol), a: { file: a, backend: ra.backend.name }, b: { file: b, backend: rb.backend.name } }
      ctx.out(flags.json ? JSON.stringify(result, null, 2) : renderCompare(result))
      if (!result.same) {
        const failed = result.checks.filter((c) => !c.ok)
        throw new MoeError(ErrorCodes.COMPARE_MISMATCH, `${a} and ${b} differ: ${failed.map((c) => c.what).join(', ')}`, { differences: failed })
      }
    })
}

function numberOption(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined
  const n = Number(value)
  if (!Number.isFinite(n) || n < 0) throw new MoeError(ErrorCodes.INPUT_INVALID, `${flag} must be a number ≥ 0, got '${value}'`, { path: flag })
  return n
}

/** Reads a `run --json` report, checking the fields the comparison uses. */
export function readReport(path: string, name: string): RunReport {
  const r = readJsonFile(path) as Partial<RunReport> | null
  const need = (ok: boolean, field: string) => {
    if (!ok) throw new MoeError(ErrorCodes.INPUT_INVALID, `${name} is not a moe-route run --json report: ${field} is missing or malformed`, { file: path, path: field })
  }
  need(!!r && typeof r === 'object' && !Array.isArray(r), '/')
  const isNums = (v: unknown) => Array.isArray(v) && v.every((x) => typeof x === 'number' && Number.isFinite(x))
  need(!!r!.backend && typeof r!.backend.name === 'string', '/backend/name')
  need(!!r!.shape && Number.isInteger(r!.shape.experts), '/shape')
  need(!!r!.workload && typeof r!.workload.source === 'string', '/workload')
  need(Array.isArray(r!.policies), '/policies')
  need(!!r!.load && isNums(r!.load.before) && isNums(r!.load.after), '/load')
  need(!!r!.output && isNums(r!.output.batchNorms) && typeof r!.output.l2Norm === 'number', '/output (reports before the output norms cannot be compared)')
  for (const k of ['batches', 'tokens', 'pairs', 'droppedPairs', 'reroutedPairs', 'addedPairs', 'tokensFullyDropped'] as const) need(typeof r![k] === 'number', `/${k}`)
  return r as RunReport
}

/** Compares two run reports: same job, same routing (within `pairs`), same output norms (within `rtol`). */
export function compareReports(a: RunReport, b: RunReport, tol: CompareTolerance): Omit<CompareResult, 'a' | 'b'> {
  const checks: CompareCheck[] = []
  const same = (what: string, x: unknown, y: unknown) => {
    const sx = JSON.stringify(x)
    const sy = JSON.stringify(y)
    checks.push({ what, ok: sx === sy, maxDiff: sx === sy ? 0 : 1, tolerance: 0, ...(sx === sy ? {} : { detail: `${sx} vs ${sy}` }) })
  }
  const { name: _na, ...shapeA } = a.shape
  const { name: _nb, ...shapeB } = b.shape
  same('shape', shapeA, shapeB)
  same('workload', { ...a.workload, description: undefined }, { ...b.workload, description: undefined })
  same('policies', a.policies, b.policies)
  same('dispatcher', a.dispatcher, b.dispatcher)
  const counts = (what: string, x: readonly number[], y: readonly number[]) => {
    if (x.length !== y.length) {
      checks.push({ what, ok: false, maxDiff: Infinity, tolerance: tol.pairs, detail: `${x.length} vs ${y.length} entries` })
      return
    }
    let max = 0
    let at = -1
    x.forEach((v, i) => Math.abs(v - y[i]) > max && ((max = Math.abs(v - y[i])), (at = i)))
    checks.push({ what, ok: max <= tol.pairs, maxDiff: max, tolerance: tol.pairs, ...(max > tol.pairs ? { detail: `entry ${at}: ${x[at]} vs ${y[at]}` } : {}) })
  }
  counts('batches, tokens, pairs', [a.batches, a.tokens, a.pairs], [b.batches, b.tokens, b.pairs])
  counts('load before policies', a.load.before, b.load.before)
  counts('load after policies', a.load.after, b.load.after)
  counts('dropped, rerouted, added pairs, tokens fully dropped', [a.droppedPairs, a.reroutedPairs, a.addedPairs, a.tokensFullyDropped], [b.droppedPairs, b.reroutedPairs, b.addedPairs, b.tokensFullyDropped])
  const rel = (x: number, y: number) => (x === y ? 0 : Math.abs(x - y) / Math.max(Math.abs(x), Math.abs(y)))
  const na = a.output.batchNorms
  const nb = b.output.batchNorms
  if (na.length !== nb.length) checks.push({ what: 'output norm per batch', ok: false, maxDiff: Infinity, tolerance: tol.rtol, detail: `${na.length} vs ${nb.length} batches` })
  else {
    let max = 0
    let at = -1
    na.forEach((v, i) => rel(v, nb[i]) > max && ((max = rel(v, nb[i])), (at = i)))
    checks.push({ what: 'output norm per batch', ok: max <= tol.rtol, maxDiff: max, tolerance: tol.rtol, ...(max > tol.rtol ? { detail: `batch ${at}: ${na[at]} vs ${nb[at]}` } : {}) })
  }
  const whole = rel(a.output.l2Norm, b.output.l2Norm)
  checks.push({ what: 'output norm', ok: whole <= tol.rtol, maxDiff: whole, tolerance: tol.rtol, ...(whole > tol.rtol ? { detail: `${a.output.l2Norm} vs ${b.output.l2Norm}` } : {}) })
  return { same: checks.every((c) => c.ok), tolerance: tol, checks }
}

/** Text of a comparison. */
export function renderCompare(r: CompareResult): string {
  const w = Math.max(...r.checks.map((c) => c.what.length))
  const num = (x: number) => (x === 0 ? '0' : Number.isFinite(x) ? (x >= 1 ? String(x) : x.toExponential(2)) : '∞')
  return [
    `compare ${r.a.file} (${r.a.backend}) with ${r.b.file} (${r.b.backend}); norms within ${r.tolerance.rtol} relative, counts within ${r.tolerance.pairs} pairs`,
    ...r.checks.map((c) => `  ${c.ok ? 'same  ' : 'DIFFER'}  ${c.what.padEnd(w)}  max diff ${num(c.maxDiff)}${c.detail ? `  (${c.detail})` : ''}`),
    r.same ? 'same job, same routing, output norms within tolerance' : 'the reports differ',
  ].join('\n')
}
