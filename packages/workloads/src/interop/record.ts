/**
 * Routing records of serving engines, as one interface: which engine and layout, the MoE
 * layers it covers, and either token-level expert ids (`chunks`) or only per-step expert
 * counts (`steps`). Token-level records also give steps (windows of tokens), so every consumer
 * that needs loads (statistics, placement, the simulator's load model) takes any record.
 */
import { MAX_EXPERTS } from '@moe-route/core'
import { corrupt, invalid } from '../io/errors.js'

/** Record layouts read by {@link openRoutingRecord}. */
export type RecordFormat =
  | 'vllm-npy'
  | 'vllm-safetensors'
  | 'vllm-json'
  | 'sglang-stat'
  | 'sglang-per-pass'
  | 'sglang-per-token'
  | 'trtllm-stats'
  | 'megatron-jsonl'

/** The engine a record came from. */
export type RecordEngine = 'vllm' | 'sglang' | 'trtllm' | 'megatron'

/** `tokens`: expert ids per token and layer; `counts`: only expert counts per step and layer. */
export type RecordKind = 'tokens' | 'counts'

/** Expert counts of one step (a forward pass, an iteration, or a window of tokens). */
export interface RecordStep {
  /** Step index in the record (0-based, in file order). */
  readonly index: number
  /** Tokens of the step when known (token-level records; TensorRT-LLM from k), else null. */
  readonly tokens: number | null
  /** `counts[i][e]`: pairs routed to expert e at the record's i-th layer (`layers[i]`). */
  readonly counts: readonly Float64Array[]
}

/** Expert ids of consecutive tokens, all layers: `ids[(t·L + i)·k + j]`, −1 for an empty slot. */
export interface TokenChunk {
  /** Index of the first token in the record. */
  readonly start: number
  readonly tokens: number
  readonly ids: Int32Array
}

/** What every record says about itself. */
export interface RoutingRecordInfo {
  readonly file: string
  readonly format: RecordFormat
  readonly engine: RecordEngine
  readonly kind: RecordKind
  /** Layer ids as the engine numbers them (vLLM: MoE-layer index; TensorRT-LLM, Megatron: model layer). */
  readonly layers: readonly number[]
  /** Experts E (logical experts); ids are checked against it. */
  readonly experts: number
  /** Experts per token k (null when a counts-only record does not say). */
  readonly topK: number | null
  /** Tokens in the record (null when unknown). */
  readonly tokens: number | null
  /** Steps the engine recorded (counts-only records), else null. */
  readonly recordedSteps: number | null
  /** Ranks whose files were combined (1 for single-file records). */
  readonly ranks: number
  /** Numbers the engine stored beside the routing (e.g. SGLang's `average_utilization_rate_over_window`). */
  readonly meta: Readonly<Record<string, number | string | null>>
}

/** Options of {@link RoutingRecord.steps}. */
export interface RecordStepOptions {
  /** Token-level records: tokens per step (default 2048). Counts-only records use their recorded steps. */
  readonly tokensPerStep?: number
}

/** An open routing record. Call {@link RoutingRecord.close}. */
export interface RoutingRecord extends RoutingRecordInfo {
  /** Per-step expert counts of every layer, streamed. */
  steps(options?: RecordStepOptions): AsyncIterable<RecordStep>
  /** Token-level records only: expert ids in chunks of up to `tokens` tokens (default 4096). */
  chunks(options?: { readonly tokens?: number }): AsyncIterable<TokenChunk>
  close(): Promise<void>
}

/** Default tokens per step of token-level records. */
export const DEFAULT_TOKENS_PER_STEP = 2048

/** Largest E inferred from the ids when none is declared (core's MAX_EXPERTS, 65,536): above it, pass `experts`. */
export const MAX_INFERRED_EXPERTS = MAX_EXPERTS

/**
 * Steps of `tokensPerStep` tokens from token chunks (a trailing partial window is a step too).
 * Ids are counted per layer; −1 slots are skipped.
 */
export async function* stepsFromChunks(
  chunks: AsyncIterable<TokenChunk>,
  layers: number,
  topK: number,
  experts: number,
  tokensPerStep = DEFAULT_TOKENS_PER_STEP,
): AsyncGenerator<RecordStep> {
  if (!Number.isInteger(tokensPerStep) || tokensPerStep < 1) throw new RangeError(`tokensPerStep must be a positive integer, got ${tokensPerStep}`)
  let counts = Array.from({ length: layers }, () => new Float64Array(experts))
  let fill = 0
  let index = 0
  for await (const c of chunks) {
    for (let t = 0; t < c.tokens; t++) {
      const base = t * layers * topK
      for (let i = 0; i < layers; i++) {
        const row = counts[i]
        for (let j = 0; j < topK; j++) {
          const e = c.ids[base + i * topK + j]
          if (e >= 0) row[e]++
        }
      }
      if (++fill === tokensPerStep) {
        yield { index: index++, tokens: fill, counts }
        counts = Array.from({ length: layers }, () => new Float64Array(experts))
        fill = 0
      }
    }
  }
  if (fill > 0) yield { index, tokens: fill, counts }
}

/** Sums a record's steps: `counts[i][e]` over the whole record, and the token total when known. */
export async function recordCounts(record: RoutingRecord): Promise<{ counts: Float64Array[]; tokens: number | null; steps: number }> {
  const counts = record.layers.map(() => new Float64Array(record.experts))
  let tokens: number | null = 0
  let steps = 0
  for await (const s of record.steps()) {
    steps++
    s.counts.forEach((row, i) => {
      for (let e = 0; e < row.length; e++) counts[i][e] += row[e]
    })
    tokens = tokens === null || s.tokens === null ? null : tokens + s.tokens
  }
  return { counts, tokens, steps }
}

/**
 * Checks ids against E and −1 (empty slot) before anything is allocated per id; returns the
 * largest id seen. `where(i)` names the offending element in the error.
 */
export function checkIds(file: string, ids: Int32Array, experts: number, where: (i: number) => string): number {
  let max = -1
  for (let i = 0; i < ids.length; i++) {
    const e = ids[i]
    if (e < -1 || e >= experts) throw corrupt(file, where(i), `expert id ${e} is out of range: the record has ${experts} experts (0..${experts - 1}; −1 marks an empty slot)`)
    if (e > max) max = e
  }
  return max
}

/** The index of layer id `layer` in a record; `MOE_ROUTE_ERR_INPUT_INVALID` listing the layers when absent. */
export function layerIndex(record: RoutingRecordInfo, layer: number): number {
  const i = record.layers.indexOf(layer)
  if (i < 0) throw invalid(`${record.file} has no layer ${layer} (layers: ${record.layers.join(', ')})`, { file: record.file, path: '--layer' })
  return i
}
