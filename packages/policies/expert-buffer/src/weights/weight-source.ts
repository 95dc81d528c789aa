/**
 * Where the store gets expert weights from: a {@link WeightSource} hands out one expert's
 * three SwiGLU matrices as one contiguous byte block in a fixed {@link ExpertLayout}. That block
 * is exactly what lands in a GPU slot, so a backend binds a slot and reads gate, up and down at
 * the layout's offsets.
 */
import type { LayerWeights } from '@moe-route/core'
import { StoreErrorCodes, checkExpert, storeError } from '../errors.js'

/** Element types of expert weights in host memory and in slots. */
export type ExpertDtype = 'f32' | 'f16' | 'bf16'

/** Bytes per element of each {@link ExpertDtype}. */
export const EXPERT_DTYPE_BYTES: Readonly<Record<ExpertDtype, number>> = { f32: 4, f16: 2, bf16: 2 }

/**
 * Byte layout of one expert in host memory and in a slot: gate `[I × H]`, then up `[I × H]`,
 * then down `[H × I]`, row-major (`nn.Linear` layout), little-endian, no padding between them.
 */
export interface ExpertLayout {
  readonly hidden: number
  readonly intermediate: number
  readonly dtype: ExpertDtype
  /** Byte offset of gate (w1 / gate_proj): always 0. */
  readonly gateOffset: number
  /** Byte offset of up (w3 / up_proj). */
  readonly upOffset: number
  /** Byte offset of down (w2 / down_proj). */
  readonly downOffset: number
  /** Bytes of the whole expert: `3 · H · I · sizeof(dtype)`. */
  readonly bytes: number
}

/** The layout of an expert of hidden size H and intermediate size I. */
export function expertLayout(hidden: number, intermediate: number, dtype: ExpertDtype = 'f32'): ExpertLayout {
  for (const [k, v] of [['hidden', hidden], ['intermediate', intermediate]] as const) {
    if (!Number.isInteger(v) || v < 1) throw storeError(StoreErrorCodes.STORE_WEIGHTS_INVALID, `${k} must be a positive integer, got ${String(v)}`, { path: k })
  }
  const b = EXPERT_DTYPE_BYTES[dtype]
  if (!b) throw storeError(StoreErrorCodes.STORE_WEIGHTS_INVALID, `unknown dtype '${String(dtype)}' (f32, f16, bf16)`, { path: 'dtype' })
  const m = hidden * intermediate * b
  return { hidden, intermediate, dtype, gateOffset: 0, upOffset: m, downOffset: 2 * m, bytes: 3 * m }
}

/**
 * Host-side expert weights of one MoE layer. `read` resolves to exactly `layout.bytes` bytes;
 * implementations keep weights in host memory or read them on demand (e.g. from safetensors).
 * The store reads every expert a batch needs *before* it changes any slot, so a failing read
 * leaves the resident set as it was.
 */
export interface WeightSource {
  /** Experts E of the layer. */
  readonly experts: number
  readonly layout: ExpertLayout
  /** The expert's gate|up|down bytes. The store does not modify them. */
  read(expert: number): Promise<Uint8Array>
  /** Releases files or memory. */
  close?(): Promise<void>
}

const asBytes = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength)

/**
 * Expert weights already in host memory as f32 (core's `LayerWeights` (core) or a list of
 * `ExpertWeights` (core)); each expert is packed once into the slot layout on first read.
 * @example
 * const source = memoryWeightSource(layerWeights) // { shape, router, experts }
 */
export function memoryWeightSource(weights: Pick<LayerWeights, 'shape' | 'experts'>): WeightSource {
  const { hidden: H, intermediate: I } = weights.shape
  const layout = expertLayout(H, I, 'f32')
  const packed = new Map<number, Uint8Array>()
  const n = H * I
  return {
    experts: weights.experts.length,
    layout,
    async read(expert) {
      checkExpert(expert, weights.experts.length, 'memoryWeightSource.read')
      let bytes = packed.get(expert)
      if (!bytes) {
        const w = weights.experts[expert]!
        for (const [name, a] of [['gate', w.gate], ['up', w.up], ['down', w.down]] as const) {
          if (a.length !== n) {
            throw storeError(StoreErrorCodes.STORE_WEIGHTS_INVALID, `expert ${expert} ${name} has ${a.length} values, expected ${I}×${H} = ${n}`, { expert })
          }
        }
        bytes = new Uint8Array(layout.bytes)
        bytes.set(asBytes(w.gate), layout.gateOffset)
        bytes.set(asBytes(w.up), layout.upOffset)
        bytes.set(asBytes(w.down), layout.downOffset)
        packed.set(expert, bytes)
      }
      return bytes
    },
  }
}

/** Options of {@link syntheticWeightSource}. */
export interface SyntheticWeightOptions {
  readonly experts: number
  readonly hidden: number
  readonly intermediate: number
  readonly dtype?: ExpertDtype
  /** Seed of the byte pattern (default 1). */
  readonly seed?: number
}

/**
 * Seeded pseudo-random expert weights of any size, generated on first read and kept in host
 * memory: values uniform in about ±0.03 (f32, f16 and bf16 bit patterns made directly, no
 * conversion), what benchmarks need when real checkpoints cannot be downloaded.
 */
export function syntheticWeightSource(options: SyntheticWeightOptions): WeightSource {
  const layout = expertLayout(options.hidden, options.intermediate, options.dtype ?? 'f32')
  const cache = new Map<number, Uint8Array>()
  return {
    experts: options.experts,
    layout,
    async read(expert) {
      checkExpert(expert, options.experts, 'syntheticWeightSource.read')
      let bytes = cache.get(expert)
      if (!bytes) {
        bytes = new Uint8Array(layout.bytes)
        fillSynthetic(bytes, layout.dtype, ((options.seed ?? 1) * 0x9e3779b1 + expert * 0x85ebca6b) >>> 0)
        cache.set(expert, bytes)
      }
      return bytes
    },
  }
}

function fillSynthetic(bytes: Uint8Array, dtype: ExpertDtype, seed: number): void {
  let s = seed || 1
  if (dtype === 'f32') {
    const f = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4)
    for (let i = 0; i < f.length; i++) {
      s ^= s << 13
      s ^= s >>> 17
      s ^= s << 5
      f[i] = ((s >>> 0) / 4294967296 - 0.5) * 0.06
    }
    return
  }
  // 16-bit: sign, a small exponent band and a random mantissa, about ±[2^-10, 2^-5].
  const u = new Uint16Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 2)
  const [expBase, expBits, mantBits] = dtype === 'f16' ? [5, 10, 10] : [117, 7, 7]
  for (let i = 0; i < u.length; i++) {
    s ^= s << 13
    s ^= s >>> 17
    s ^= s << 5
    const r = s >>> 0
    const exp = expBase + (r % 5)
    u[i] = ((r >>> 31) << 15) | (exp << expBits) | ((r >>> 8) & ((1 << mantBits) - 1))
  }
}
