/**
 * Expert weights read from safetensors checkpoints (the format MoE checkpoints ship in) through
 * @moe-route/workloads' streaming reader: opening parses only the headers; reading an expert
 * touches only its three tensors' bytes. Read experts stay in host memory by default, so each
 * is read from disk once.
 */
import { isMoeError } from '@moe-route/core'
import { openSafetensors, type SafetensorsFile, type SafetensorsTensorInfo } from '@moe-route/workloads'
import { StoreErrorCodes, checkExpert, storeError } from '../errors.js'
import { expertTensorLayouts, type ExpertTensorLayoutName, type ExpertTensorNamer, type ExpertTensorNames } from './tensor-names.js'
import { expertLayout, type ExpertDtype, type WeightSource } from './weight-source.js'

/** Options of {@link openSafetensorsWeights}. */
export interface SafetensorsWeightOptions {
  /** One file or the shards of a checkpoint (tensors may be in any of them). */
  readonly files: string | readonly string[]
  /** MoE layer index L in the tensor names. */
  readonly layer: number
  /** `mixtral`, `olmoe` or your own namer. */
  readonly layout: ExpertTensorLayoutName | ExpertTensorNamer
  /** Experts E; default: count experts 0, 1, … whose gate tensor exists. */
  readonly experts?: number
  /** Keep read experts in host memory (default true). */
  readonly keepInHost?: boolean
}

const DTYPES: Record<string, ExpertDtype> = { F32: 'f32', F16: 'f16', BF16: 'bf16' }

/**
 * Opens safetensors shards and checks, from the headers alone, that every expert of the layer
 * has gate `[I × H]`, up `[I × H]` and down `[H × I]` of one float dtype (F32, F16 or BF16).
 * A corrupt or truncated file is the reader's `MOE_ROUTE_ERR_TRACE_CORRUPT`; a missing or
 * misshapen tensor is `MOE_ROUTE_ERR_STORE_WEIGHTS_INVALID`.
 * @example
 * const weights = await openSafetensorsWeights({ files: ['model-00001-of-00019.safetensors'], layer: 0, layout: 'mixtral' })
 * const store = new ExpertBufferStore({ experts: 8, slots: 4, weights })
 */
export async function openSafetensorsWeights(options: SafetensorsWeightOptions): Promise<WeightSource> {
  const paths = typeof options.files === 'string' ? [options.files] : [...options.files]
  const namer: ExpertTensorNamer = typeof options.layout === 'function' ? options.layout : expertTensorLayouts[options.layout]
  if (!namer) throw storeError(StoreErrorCodes.STORE_WEIGHTS_INVALID, `unknown tensor layout '${String(options.layout)}' (mixtral, olmoe)`, { path: 'layout' })
  const files: SafetensorsFile[] = []
  try {
    for (const p of paths) files.push(await openSafetensors(p))
  } catch (e) {
    await Promise.all(files.map((f) => f.close()))
    throw e
  }
  const where = new Map<string, { file: SafetensorsFile; info: SafetensorsTensorInfo }>()
  for (const f of files) for (const info of f.tensors) where.set(info.name, { file: f, info })
  const find = (name: string, expert: number) => {
    const hit = where.get(name)
    if (!hit) {
      throw storeError(StoreErrorCodes.STORE_WEIGHTS_INVALID, `tensor ${name} (layer ${options.layer}, expert ${expert}) is in none of ${paths.join(', ')}`, {
        record: name,
        file: paths.join(','),
      })
    }
    return hit
  }
  try {
    let experts = options.experts
    if (experts === undefined) {
      experts = 0
      while (where.has(namer(options.layer, experts).gate)) experts++
      if (experts === 0) find(namer(options.layer, 0).gate, 0)
    }
    const names: ExpertTensorNames[] = []
    let H = 0
    let I = 0
    let dtype: ExpertDtype | undefined
    for (let e = 0; e < experts; e++) {
      const n = namer(options.layer, e)
      const gate = find(n.gate, e).info
      const up = find(n.up, e).info
      const down = find(n.down, e).info
      if (e === 0) {
        ;[I, H] = gate.shape as [number, number]
        dtype = DTYPES[gate.dtype]
      }
      for (const [t, shape] of [[gate, [I, H]], [up, [I, H]], [down, [H, I]]] as const) {
        if (t.shape.length !== 2 || t.shape[0] !== shape[0] || t.shape[1] !== shape[1] || DTYPES[t.dtype] === undefined || DTYPES[t.dtype] !== dtype) {
          throw storeError(
            StoreErrorCodes.STORE_WEIGHTS_INVALID,
            `tensor ${t.name} is ${t.dtype}[${t.shape.join(', ')}], expected ${dtype?.toUpperCase() ?? 'F32/F16/BF16'}[${shape.join(', ')}] like expert 0 (gate/up [I, H], down [H, I])`,
            { record: t.name },
          )
        }
      }
      names.push(n)
    }
    const layout = expertLayout(H, I, dtype!)
    const keep = options.keepInHost ?? true
    const host = new Map<number, Uint8Array>()
    const E = experts
    return {
      experts: E,
      layout,
      async read(expert) {
        checkExpert(expert, E, 'safetensors weights')
        const cached = host.get(expert)
        if (cached) return cached
        const n = names[expert]!
        const bytes = new Uint8Array(layout.bytes)
        const offsets = [layout.gateOffset, layout.upOffset, layout.downOffset]
        const parts = [n.gate, n.up, n.down]
        for (let i = 0; i < 3; i++) {
          const { file } = where.get(parts[i]!)!
          let b: Uint8Array
          try {
            b = await file.readTensorBytes(parts[i]!)
          } catch (cause) {
            if (isMoeError(cause)) throw cause
            throw storeError(StoreErrorCodes.STORE_LOAD_FAILED, `reading ${parts[i]} from ${file.path}: ${(cause as Error).message}`, { file: file.path, record: parts[i] }, cause)
          }
          bytes.set(b, offsets[i])
        }
        if (keep) host.set(expert, bytes)
        return bytes
      },
      async close() {
        host.clear()
        await Promise.all(files.map((f) => f.close()))
      },
    }
  } catch (e) {
    await Promise.all(files.map((f) => f.close()))
    throw e
  }
}
