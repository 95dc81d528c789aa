/**
 * Which engine wrote a file, and opening it as a {@link RoutingRecord}. Detection looks at the
 * bytes, not only the name: a `.npy` or safetensors file of integers is a vLLM routed-experts
 * array (floats are router logits, read by `traceBatches`), a JSONL whose first record has
 * `top_indices` is a Megatron trace, a directory with `meta_info.json` is TensorRT-LLM
 * statistics and one with `router_trace_rank*.jsonl` Megatron traces.
 */
import { readdir, stat } from 'node:fs/promises'
import { createInterface } from 'node:readline'
import { corrupt, invalid, notFound } from '../io/errors.js'
import { openForRead, readExactly } from '../io/file.js'
import { openSafetensors } from '../safetensors/safetensors.js'
import { openMegatronTrace } from './megatron.js'
import type { RecordFormat, RoutingRecord } from './record.js'
import { openSglangDump } from './sglang.js'
import { openTrtllmStats } from './trtllm.js'
import { openVllmJson, openVllmNpy, openVllmSafetensors, type RecordReadOptions } from './vllm.js'

/** Options of {@link openRoutingRecord}. */
export interface OpenRecordOptions extends RecordReadOptions {
  /** Skip detection. */
  readonly format?: RecordFormat
}

/** Every record format, for help texts and validation. */
export const RECORD_FORMATS: readonly RecordFormat[] = [
  'vllm-npy',
  'vllm-safetensors',
  'vllm-json',
  'sglang-stat',
  'sglang-per-pass',
  'sglang-per-token',
  'trtllm-stats',
  'megatron-jsonl',
]

async function firstLine(path: string): Promise<string | null> {
  const { handle } = await openForRead(path)
  const stream = handle.createReadStream({ autoClose: false, highWaterMark: 1 << 16, end: 1 << 24 })
  const lines = createInterface({ input: stream, crlfDelay: Infinity })
  try {
    for await (const l of lines) if (l.trim() !== '') return l
    return null
  } finally {
    lines.close()
    stream.destroy()
    await handle.close()
  }
}

/**
 * The record format of `path`, or null when it is a moe-route trace (`.jsonl` records with
 * `experts`, float `.npy`/safetensors logits) that `traceBatches` reads. SGLang's three modes
 * share one detection result (`sglang-stat`); the reader tells them apart.
 */
export async function sniffRecordFormat(path: string): Promise<RecordFormat | null> {
  let st
  try {
    st = await stat(path)
  } catch (cause) {
    throw notFound(path, cause)
  }
  const lower = path.toLowerCase()
  if (st.isDirectory()) {
    const names = await readdir(path)
    if (names.includes('meta_info.json')) return 'trtllm-stats'
    if (names.some((n) => /^router_trace_rank\d+\.jsonl$/.test(n))) return 'megatron-jsonl'
    throw invalid(`${path} is a directory with neither meta_info.json (TensorRT-LLM statistics) nor router_trace_rank*.jsonl (Megatron traces)`, { file: path })
  }
  if (lower.endsWith('meta_info.json')) return 'trtllm-stats'
  if (lower.endsWith('.pt') || lower.endsWith('.pth')) return 'sglang-stat'
  if (lower.endsWith('.json')) return 'vllm-json'
  if (lower.endsWith('.npy')) {
    const { handle, size } = await openForRead(path)
    try {
      const head = await readExactly(handle, path, 0, Math.min(size, 256), 'header')
      const text = new TextDecoder('latin1').decode(head)
      const descr = /'descr'\s*:\s*'([^']*)'/.exec(text)?.[1]
      return descr && /^[<|][iu][1248]$/.test(descr) ? 'vllm-npy' : null
    } finally {
      await handle.close()
    }
  }
  if (lower.endsWith('.safetensors')) {
    const st = await openSafetensors(path)
    try {
      return st.tensors.some((t) => !/^F|^BF/.test(t.dtype) && t.shape.length === 3) ? 'vllm-safetensors' : null
    } finally {
      await st.close()
    }
  }
  if (lower.endsWith('.jsonl') || lower.endsWith('.ndjson')) {
    const line = await firstLine(path)
    return line !== null && /"top_indices"\s*:/.test(line) ? 'megatron-jsonl' : null
  }
  return null
}

/**
 * Opens an engine's routing record (vLLM, SGLang, TensorRT-LLM, Megatron-core), detecting the
 * format unless `format` is given. Errors are `MOE_ROUTE_ERR_FILE_NOT_FOUND`,
 * `MOE_ROUTE_ERR_TRACE_CORRUPT` (naming the file and the part) and, for a `.pt` whose pickle
 * names anything but torch's tensor-rebuild calls, `MOE_ROUTE_ERR_TRACE_PICKLE_REFUSED`.
 *
 * @example
 * const rec = await openRoutingRecord('olmoe-vllm-routed-experts.npy')
 * const { counts } = await recordCounts(rec) // counts[layer][expert]
 * await rec.close()
 */
export async function openRoutingRecord(path: string, options: OpenRecordOptions = {}): Promise<RoutingRecord> {
  const format = options.format ?? (await sniffRecordFormat(path))
  if (format === null) throw corrupt(path, 'format', 'is not an engine routing record (vLLM, SGLang, TensorRT-LLM, Megatron); read it as a moe-route trace')
  switch (format) {
    case 'vllm-npy':
      return openVllmNpy(path, options)
    case 'vllm-safetensors':
      return openVllmSafetensors(path, options)
    case 'vllm-json':
      return openVllmJson(path, options)
    case 'sglang-stat':
    case 'sglang-per-pass':
    case 'sglang-per-token':
      return openSglangDump(path, options)
    case 'trtllm-stats':
      return openTrtllmStats(path, options)
    case 'megatron-jsonl':
      return openMegatronTrace(path, options)
    default:
      throw invalid(`unknown record format ${JSON.stringify(format)} (known: ${RECORD_FORMATS.join(', ')})`)
  }
}
