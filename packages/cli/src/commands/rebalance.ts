/**
 * `moe-route rebalance --stats <record> --current <map>`: whether moving experts pays, and the
 * new map when it does. Per layer: vLLM balancedness (mean/max rank load) of the current map under
 * the record's loads, a rebalance from the current map (a local search that moves at most
 * `--max-moves` expert weights per layer; unbounded without it), the predicted balancedness,
 * experts and bytes moved. Layers already at `--min-balancedness` keep their map (SGLang's
 * `eplb_min_rebalancing_utilization_threshold` rule). When the predicted gain of the mean
 * balancedness is below `--min-gain`, no map is written and the command says why (exit 0).
 */
import { readFileSync, writeFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { ErrorCodes, MoeError } from '@moe-route/core'
import {
  balancedness,
  deviceLoadsOf,
  ENGINE_FORMATS,
  placementFromPhy2log,
  readEnginePlacement,
  rebalanceIncremental,
  spreadReplicas,
  writeEnginePlacement,
  type EngineFormat,
} from '@moe-route/policy-placement'
import { Option, type Command } from 'commander'
import { intOption, type CliContext } from '../context.js'
import { openRecordIfAny, recordLoads, selectLayers } from '../record-source.js'
import { table } from '../report.js'
import { MAX_DEVICES, MAX_EXPERTS, MAX_LAYER } from '@moe-route/core'
import { withActivity } from '../progress.js'

interface RebalanceFlags {
  stats: string
  current: string
  devices?: string
  experts?: string
  layer?: string
  minBalancedness?: string
  minGain: string
  maxMoves?: string
  expertBytes?: string
  format?: string
  out?: string
  json?: boolean
  progress?: boolean
}

/** One layer's decision. */
export interface LayerRebalance {
  readonly layer: number
  readonly before: number
  readonly after: number
  /** Expert weights copied to a device that did not hold them. */
  readonly moved: number
  readonly bytesMoved: number | null
  /** Why the layer kept its map, if it did. */
  readonly kept: string | null
}

/** What `rebalance --json` prints. */
export interface RebalanceReport {
  readonly decision: 'rebalance' | 'skip'
  readonly reason: string
  readonly devices: number
  readonly meanBefore: number
  readonly meanAfter: number
  readonly moved: number
  readonly bytesMoved: number | null
  readonly layers: LayerRebalance[]
  readonly out: string | null
  readonly format: EngineFormat
}

/** Experts of `next` per device that `prev` did not hold there (multiset difference). */
function movedOnDevices(prev: readonly number[], next: readonly number[], gpus: number): number {
  const per = prev.length / gpus
  let moved = 0
  for (let d = 0; d < gpus; d++) {
    const have = new Map<number, number>()
    for (const e of prev.slice(d * per, (d + 1) * per)) have.set(e, (have.get(e) ?? 0) + 1)
    for (const e of next.slice(d * per, (d + 1) * per)) {
      const n = have.get(e) ?? 0
      if (n > 0) have.set(e, n - 1)
      else moved++
    }
  }
  return moved
}

/** `next`'s device contents in `prev`'s slot order: experts that stay keep their slot. */
function alignRow(prev: readonly number[], next: readonly number[], gpus: number): number[] {
  const per = prev.length / gpus
  const out: number[] = []
  for (let d = 0; d < gpus; d++) {
    const want = next.slice(d * per, (d + 1) * per)
    const slots = prev.slice(d * per, (d + 1) * per).map((e) => {
      const i = want.indexOf(e)
      if (i < 0) return -1
      want.splice(i, 1)
      return e
    })
    out.push(...slots.map((e) => (e >= 0 ? e : (want.shift() as number))))
  }
  return out
}

/** Registers `rebalance`. */
export function register(program: Command, ctx: CliContext): void {
  program
    .command('rebalance')
    .description('predict whether re-placing experts pays under a routing record, and write the new map (SGLang, vLLM, TensorRT-LLM, EPLB) when it does')
    .requiredOption('--stats <record>', 'routing record (vLLM .npy/.safetensors/.json, SGLang .pt, TensorRT-LLM stats dir, Megatron traces)')
    .requiredOption('--current <map>', 'placement in force (SGLang, vLLM, TensorRT-LLM, EPLB or moe-route file)')
    .option('--devices <D>', 'EP ranks (needed for SGLang and TensorRT-LLM maps, which do not store it)')
    .option('--experts <E>', 'experts (default from the record)')
    .option('--layer <n>', 'only this layer of the record')
    .option('--min-balancedness <B>', 'layers whose balancedness is already at least B keep their map')
    .option('--min-gain <G>', 'write no map unless the mean balancedness rises by at least G', '0.01')
    .option('--max-moves <N>', 'move at most N expert weights per layer')
    .option('--expert-bytes <n>', 'bytes of one expert\'s weights, to report bytes moved')
    .addOption(new Option('--format <name>', 'format of the new map (default: that of --current)').choices(ENGINE_FORMATS.filter((f) => f !== 'sglang-count')))
    .option('--out <file>', 'where to write the new map (default: print it)')
    .option('--json', 'print the report as JSON')
    .option('--no-progress', 'no progress display (it only shows on a terminal)')
    .action(async (flags: RebalanceFlags) => {
      const r = await withActivity(ctx, flags.progress !== false, `reading ${flags.stats}`, () => rebalanceJob(flags, ctx))
      ctx.out(flags.json ? JSON.stringify(r.report, null, 2) : r.text)
    })
}

/** Runs `rebalance`; returns the report, its text and the new map (null when skipped). */
export async function rebalanceJob(flags: RebalanceFlags, ctx: CliContext): Promise<{ report: RebalanceReport; text: string; map: string | null }> {
  const num = (v: string | undefined, flag: string): number | undefined => {
    if (v === undefined) return undefined
    const n = Number(v)
    if (!Number.isFinite(n) || n < 0) throw new MoeError(ErrorCodes.INPUT_INVALID, `${flag} must be a number ≥ 0, got '${v}'`, { path: flag })
    return n
  }
  const minBal = num(flags.minBalancedness, '--min-balancedness')
  const minGain = num(flags.minGain, '--min-gain') ?? 0.01
  const maxMoves = intOption(flags.maxMoves, '--max-moves', 0, MAX_EXPERTS)
  const expertBytes = intOption(flags.expertBytes, '--expert-bytes', 1, Number.MAX_SAFE_INTEGER)
  const record = await openRecordIfAny(flags.stats, ctx.cwd, intOption(flags.experts, '--experts', 1, MAX_EXPERTS))
  if (!record) throw new MoeError(ErrorCodes.INPUT_INVALID, `${flags.stats} is not an engine routing record (vLLM, SGLang, TensorRT-LLM, Megatron)`, { path: '--stats', file: flags.stats })
  let loads
  let pick: number[]
  try {
    loads = await recordLoads(record)
    pick = selectLayers(record, intOption(flags.layer, '--layer', 0, MAX_LAYER))
  } finally {
    await record.close()
  }
  const currentPath = resolve(ctx.cwd, flags.current)
  let text: string
  try {
    text = readFileSync(currentPath, 'utf8')
  } catch (cause) {
    throw new MoeError(ErrorCodes.FILE_NOT_FOUND, `cannot read ${flags.current}: ${(cause as Error).message}`, { file: flags.current }, { cause })
  }
  const current = readEnginePlacement(text, { gpus: intOption(flags.devices, '--devices', 1, MAX_DEVICES), experts: record.experts, file: flags.current })
  if (current.phy2log.length !== 1 && current.phy2log.length !== pick.length) {
    throw new MoeError(ErrorCodes.SHAPE_MISMATCH, `${flags.current} places ${current.phy2log.length} layers, the record (after --layer) has ${pick.length}`, { file: flags.current })
  }
  const D = current.gpus
  const format = (flags.format ?? current.format) as EngineFormat
  const layers: LayerRebalance[] = []
  const rows: number[][] = []
  pick.forEach((li, k) => {
    const load = [...loads.total[li]]
    const row = [...(current.phy2log.length === 1 ? current.phy2log[0] : current.phy2log[k])]
    const before = balancedness(deviceLoadsOf(load, row, D))
    const keep = (why: string) => {
      rows.push(row)
      layers.push({ layer: record.layers[li], before, after: before, moved: 0, bytesMoved: expertBytes === undefined ? null : 0, kept: why })
    }
    if (minBal !== undefined && before >= minBal) return keep(`balancedness ${before.toFixed(3)} ≥ --min-balancedness ${minBal}`)
    const res = rebalanceIncremental(placementFromPhy2log(row, D, record.experts), load, { maxMoves: maxMoves ?? Number.MAX_SAFE_INTEGER })
    let next = alignRow(row, res.phy2log, D)
    if (format === 'vllm') next = spreadReplicas(next, D, load).row
    const after = balancedness(deviceLoadsOf(load, next, D))
    if (after <= before + 1e-12) return keep('no move raises its balancedness')
    const moved = movedOnDevices(row, next, D)
    if (maxMoves !== undefined && moved > maxMoves) return keep(`the best rebalance moves ${moved} > --max-moves ${maxMoves}`)
    rows.push(next)
    layers.push({ layer: record.layers[li], before, after, moved, bytesMoved: expertBytes === undefined ? null : moved * expertBytes, kept: null })
  })
  const mean = (f: (l: LayerRebalance) => number) => layers.reduce((a, l) => a + f(l), 0) / layers.length
  const meanBefore = mean((l) => l.before)
  const meanAfter = mean((l) => l.after)
  const moved = layers.reduce((a, l) => a + l.moved, 0)
  const gain = meanAfter - meanBefore
  const skip = gain < minGain
  const reason = skip
    ? layers.every((l) => l.kept)
      ? `no layer needs or allows a move (${layers.map((l) => `layer ${l.layer}: ${l.kept}`).join('; ')})`
      : `predicted gain of mean balancedness ${gain.toFixed(4)} is below --min-gain ${minGain}: not worth moving ${moved} expert weight(s)`
    : `mean balancedness ${meanBefore.toFixed(3)} → ${meanAfter.toFixed(3)} (+${gain.toFixed(3)}) for ${moved} expert weight(s) moved`
  let map: string | null = null
  if (!skip) {
    map = writeEnginePlacement({ layers: pick.map((i) => record.layers[i]), gpus: D, experts: record.experts, phy2log: rows }, format)
    if (flags.out) writeFileSync(resolve(ctx.cwd, flags.out), map)
  }
  const report: RebalanceReport = {
    decision: skip ? 'skip' : 'rebalance',
    reason,
    devices: D,
    meanBefore,
    meanAfter,
    moved,
    bytesMoved: expertBytes === undefined ? null : moved * expertBytes,
    layers,
    out: !skip && flags.out ? flags.out : null,
    format,
  }
  const lines = [
    table([
      ['layer', 'balancedness before', 'after', 'experts moved', 'bytes moved', 'note'],
      ...layers.map((l) => [String(l.layer), l.before.toFixed(3), l.after.toFixed(3), String(l.moved), l.bytesMoved === null ? '–' : String(l.bytesMoved), l.kept ?? '']),
    ]),
    '',
    `${skip ? 'no new map' : 'rebalance'}: ${reason}`,
  ]
  if (!skip) lines.push(flags.out ? `wrote ${flags.out} (${format})` : map as string)
  return { report, text: lines.join('\n'), map }
}
