/** Host-side IEEE half-precision conversion (Node 20 has no Float16Array). */

const f32 = new Float32Array(1)
const u32 = new Uint32Array(f32.buffer)

/** f32 → f16 bits, round to nearest even (the rounding `pack2x16float` uses on GPUs). */
export function f16Bits(value: number): number {
  f32[0] = value
  const x = u32[0]
  const sign = (x >>> 16) & 0x8000
  const exp = (x >>> 23) & 0xff
  let mant = x & 0x7fffff
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0)
  const e = exp - 127 + 15
  if (e >= 0x1f) return sign | 0x7c00
  if (e <= 0) {
    if (e < -10) return sign
    mant |= 0x800000
    const shift = 14 - e
    let half = mant >>> shift
    const rem = mant & ((1 << shift) - 1)
    const halfway = 1 << (shift - 1)
    if (rem > halfway || (rem === halfway && half & 1)) half++
    return sign | half
  }
  let half = (e << 10) | (mant >>> 13)
  const rem = mant & 0x1fff
  if (rem > 0x1000 || (rem === 0x1000 && half & 1)) half++
  return sign | half
}

/** f16 bits → number. */
export function f16ToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1
  const exp = (h >>> 10) & 0x1f
  const mant = h & 0x3ff
  if (exp === 0) return sign * mant * 2 ** -24
  if (exp === 0x1f) return mant ? NaN : sign * Infinity
  return sign * (1 + mant / 1024) * 2 ** (exp - 15)
}

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
