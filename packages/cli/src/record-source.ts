/**
 * Engine routing records (vLLM, SGLang, TensorRT-LLM, Megatron) for the commands that take
 * `--trace`: detection, per-layer loads and per-step loads, and the engines' metrics of them
 * under a placement.
 */
import { existsSync, readFileSync } from 'node:fs'
import { resolve } from 'node:path'
import { ErrorCodes, MoeError } from '@moe-route/core'
import {
  averageMetrics,
  contiguousRow,
  engineMetrics,
  readEnginePlacement,
  type EngineMetrics,
  type LayeredPlacement,
} from '@moe-route/policy-placement'
import { openRoutingRecord, recordsToBatches, sniffRecordFormat, type RoutingRecord, type TraceRecord } from '@moe-route/workloads'
import type { TokenBatch } from '@moe-route/core'

/**
 * Opens `raw` (relative to `cwd`) as an engine record, or returns null when it is a moe-route
 * trace or a workload spec (`olmoe:arxiv:layer0`: no such file, and a `:` in the name).
 */
export async function openRecordIfAny(raw: string, cwd: string, experts?: number): Promise<RoutingRecord | null> {
  const path = resolve(cwd, raw)
  let format
  try {
    format = await sniffRecordFormat(path)
  } catch (e) {
    if ((e as MoeError).code === ErrorCodes.FILE_NOT_FOUND && raw.includes(':') && !existsSync(path)) return null
    throw e
  }
  return format === null ? null : openRoutingRecord(path, { format, ...(experts !== undefined ? { experts } : {}) })
}

/** Per-layer loads of a whole record and of each step, read in one pass. */
export interface RecordLoads {
  readonly layers: readonly number[]
  /** `total[i][e]` over the whole record. */
  readonly total: Float64Array[]
  /** `steps[s][i][e]`. */
  readonly steps: Float64Array[][]
  /** Tokens per step when known. */
  readonly stepTokens: (number | null)[]
}

/** Reads every step of a record (counts: recorded steps; token-level: `tokensPerStep` windows). */
export async function recordLoads(record: RoutingRecord, tokensPerStep?: number): Promise<RecordLoads> {
  const total = record.layers.map(() => new Float64Array(record.experts))
  const steps: Float64Array[][] = []
  const stepTokens: (number | null)[] = []
  for await (const s of record.steps(tokensPerStep !== undefined ? { tokensPerStep } : {})) {
    steps.push(s.counts as Float64Array[])
    stepTokens.push(s.tokens)
    s.counts.forEach((row, i) => {
      for (let e = 0; e < row.length; e++) total[i][e] += row[e]
    })
  }
  return { layers: record.layers, total, steps, stepTokens }
}

/**
 * The placement metrics are computed under: a file (`--placement`) or contiguous over `devices`
 * — null when E does not divide over the devices (no equal-slot contiguous placement exists).
 */
export function metricsPlacement(layers: readonly number[], experts: number, devices: number, file?: string): (LayeredPlacement & { readonly label: string }) | null {
  if (file) {
    const p = readEnginePlacement(readFileSync(file, 'utf8'), { gpus: devices, experts, file })
    if (p.phy2log.length !== 1 && p.phy2log.length !== layers.length) {
      throw new MoeError(ErrorCodes.SHAPE_MISMATCH, `${file} places ${p.phy2log.length} layers, the record has ${layers.length}`, { file })
    }
    return { ...p, layers, label: `${p.format} placement ${file}` }
  }
  if (experts % devices !== 0) return null
  return { layers, gpus: devices, experts, phy2log: [contiguousRow(experts, devices)], label: 'contiguous placement' }
}

/** Whole-record and per-step-averaged engine metrics of loads under a placement. */
export function loadMetrics(loads: RecordLoads, placement: LayeredPlacement): { whole: EngineMetrics; perStep: EngineMetrics | null } {
  const rows = placement.phy2log
  const whole = engineMetrics(loads.layers, loads.total, rows, placement.gpus)
  const perStep = averageMetrics(loads.steps.map((s) => engineMetrics(loads.layers, s, rows, placement.gpus)))
  return { whole, perStep }
}

/** Indices of the layers a `--layer` option selects (all without it). */
export function selectLayers(record: RoutingRecord, layer?: number): number[] {
  if (layer === undefined) return record.layers.map((_, i) => i)
  const i = record.layers.indexOf(layer)
  if (i < 0) throw new MoeError(ErrorCodes.INPUT_INVALID, `${record.file} has no layer ${layer} (layers: ${record.layers.join(', ')})`, { path: '--layer' })
  return [i]
}

/**
 * One layer of a token-level record as core TokenBatches: the recorded experts become trace
 * records whose synthesized gate scores have them as top-k (see @moe-route/workloads
 * `recordsToBatches`), so routers and policies run on them like on any trace.
 */
export function recordLayerBatches(record: RoutingRecord, layerIndex: number, o: { tokensPerBatch: number; batches?: number; seed?: number }): AsyncGenerator<TokenBatch> {
  const k = record.topK as number
  const L = record.layers.length
  async function* traceRecords(): AsyncGenerator<TraceRecord> {
    for await (const c of record.chunks()) {
      for (let t = 0; t < c.tokens; t++) {
        const base = (t * L + layerIndex) * k
        const experts: number[] = []
        for (let j = 0; j < k; j++) if (c.ids[base + j] >= 0) experts.push(c.ids[base + j])
        if (experts.length === k) yield { layer: record.layers[layerIndex], token: c.start + t, experts }
      }
    }
  }
  return recordsToBatches(traceRecords(), { experts: record.experts, topK: k, tokensPerBatch: o.tokensPerBatch, ...(o.batches !== undefined ? { batches: o.batches } : {}), seed: o.seed ?? 0, file: record.file })
}
