/** Host-side f16 packing of weights into u32 words (two halves per word) for the GPU. */
import { f16Bits, f16ToNumber } from '@moe-route/core'

// The f32 ⇄ f16 bit conversion is core's (one definition for readers and weights); kept
// exported here under the same names for existing importers of backend-webgpu.
export { f16Bits, f16ToNumber }

/** Packs an even-length f32 array into u32 words of two f16 (element 2i in the low half). */
export function packF16(values: Float32Array): Uint32Array {
  const out = new Uint32Array(Math.ceil(values.length / 2))
  for (let i = 0; i < out.length; i++) {
    const lo = f16Bits(values[2 * i])
    const hi = 2 * i + 1 < values.length ? f16Bits(values[2 * i + 1]) : 0
    out[i] = (lo | (hi << 16)) >>> 0
  }
  return out
}

/** Unpacks u32 words of two f16 into f32 (inverse of {@link packF16}). */
export function unpackF16(words: Uint32Array, count = words.length * 2): Float32Array {
  const out = new Float32Array(count)
  for (let i = 0; i < count; i++) out[i] = f16ToNumber(i & 1 ? words[i >>> 1] >>> 16 : words[i >>> 1] & 0xffff)
  return out
}

/** Rounds every value to the nearest f16 (what the f16 weight path computes with). */
export function roundToF16(values: Float32Array): Float32Array {
  const out = new Float32Array(values.length)
  for (let i = 0; i < values.length; i++) out[i] = f16ToNumber(f16Bits(values[i]))
  return out
}
