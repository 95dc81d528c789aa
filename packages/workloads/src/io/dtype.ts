/**
 * Conversions from the float formats that router logits ship in (float32, float16, bfloat16,
 * float64) to Float32Array. Node 20 has no Float16Array, and the conversion is a few lines,
 * so it is written here rather than pulled in as a dependency.
 */
import { f16Bits, f16ToNumber } from '@moe-route/core'

// made on first f16 decode: 65,536 entries would otherwise be built by every import of the package
let F16_TABLE: Float32Array | null = null

function buildF16Table(): Float32Array {
  const table = new Float32Array(65536)
  for (let h = 0; h < 65536; h++) table[h] = f16ToNumber(h)
  return table
}

/** Element dtypes the readers decode to Float32Array. */
export type FloatDtype = 'f32' | 'f16' | 'bf16' | 'f64'

/** Bytes per element of a {@link FloatDtype}. */
export function floatBytes(dtype: FloatDtype): number {
  return dtype === 'f64' ? 8 : dtype === 'f32' ? 4 : 2
}

/**
 * Decodes `count` little-endian elements of `dtype` starting at `bytes[byteOffset]` into
 * a new Float32Array (float64 values are rounded to float32).
 */
export function decodeFloats(bytes: Uint8Array, byteOffset: number, count: number, dtype: FloatDtype): Float32Array {
  const out = new Float32Array(count)
  const view = new DataView(bytes.buffer, bytes.byteOffset + byteOffset, count * floatBytes(dtype))
  switch (dtype) {
    case 'f32':
      for (let i = 0; i < count; i++) out[i] = view.getFloat32(i * 4, true)
      break
    case 'f64':
      for (let i = 0; i < count; i++) out[i] = view.getFloat64(i * 8, true)
      break
    case 'f16': {
      const table = (F16_TABLE ??= buildF16Table())
      for (let i = 0; i < count; i++) out[i] = table[view.getUint16(i * 2, true)]
      break
    }
    case 'bf16': {
      const word = new Uint32Array(1)
      const asFloat = new Float32Array(word.buffer)
      for (let i = 0; i < count; i++) {
        word[0] = view.getUint16(i * 2, true) << 16
        out[i] = asFloat[0]
      }
      break
    }
  }
  return out
}

/** Truncates-with-rounding a float32 to bfloat16 bits (round half to even; NaN stays NaN). */
export function toBf16Bits(value: number): number {
  const f = new Float32Array([value])
  const x = new Uint32Array(f.buffer)[0]
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return (x >>> 16) | 0x40
  const rounded = x + 0x7fff + ((x >>> 16) & 1)
  return (rounded >>> 16) & 0xffff
}

/** Encodes float values as little-endian bytes of `dtype`. */
export function encodeFloats(values: ArrayLike<number>, dtype: FloatDtype): Uint8Array {
  const out = new Uint8Array(values.length * floatBytes(dtype))
  const view = new DataView(out.buffer)
  for (let i = 0; i < values.length; i++) {
    const v = values[i]
    if (dtype === 'f32') view.setFloat32(i * 4, v, true)
    else if (dtype === 'f64') view.setFloat64(i * 8, v, true)
    else if (dtype === 'f16') view.setUint16(i * 2, f16Bits(v), true)
    else view.setUint16(i * 2, toBf16Bits(v), true)
  }
  return out
}
