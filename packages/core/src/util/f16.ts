/**
 * IEEE 754 half precision (f16) on the host: the one conversion between f32 and f16 bits for
 * the monorepo (workloads' readers decode f16 tensors with it; backend-webgpu packs f16 weights
 * with it). In core, the lowest package, because both use it and core runs in browsers too.
 * Node 20 has no Float16Array and the conversion is a few lines, so it is written here rather
 * than pulled in as a dependency.
 */

const f32 = new Float32Array(1)
const u32 = new Uint32Array(f32.buffer)

/**
 * f32 → f16 bits, rounding to nearest even (the rounding WGSL's `pack2x16float` uses on GPUs);
 * overflow gives ±Inf, NaN stays NaN, values below the smallest subnormal give ±0.
 *
 * @example
 * f16Bits(1) // 0x3c00
 */
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

/** f16 bits (the low 16 bits of `h`) → the number they encode, exactly. */
export function f16ToNumber(h: number): number {
  const sign = h & 0x8000 ? -1 : 1
  const exp = (h >>> 10) & 0x1f
  const mant = h & 0x3ff
  if (exp === 0) return sign * mant * 2 ** -24
  if (exp === 0x1f) return mant ? NaN : sign * Infinity
  return sign * (1 + mant / 1024) * 2 ** (exp - 15)
}
