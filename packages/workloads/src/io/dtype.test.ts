import { describe, expect, it } from 'vitest'
import { decodeFloats, encodeFloats, toBf16Bits } from './dtype.js'
import { f16Bits as toF16Bits, f16ToNumber } from '@moe-route/core'

describe('float16 / bfloat16 conversion', () => {
  it('encodes and decodes float16 specials, subnormals and rounding', () => {
    expect(toF16Bits(1)).toBe(0x3c00)
    expect(toF16Bits(-2)).toBe(0xc000)
    expect(toF16Bits(65504)).toBe(0x7bff)
    expect(toF16Bits(1e6)).toBe(0x7c00) // overflow → +Inf
    expect(toF16Bits(-Infinity)).toBe(0xfc00)
    expect(toF16Bits(2 ** -24)).toBe(0x0001) // smallest subnormal
    expect(toF16Bits(2 ** -26)).toBe(0x0000) // underflow to zero
    expect(toF16Bits(1 + 2 ** -11)).toBe(0x3c00) // tie rounds to even
    expect(toF16Bits(1 + 3 * 2 ** -11)).toBe(0x3c02)
    const back = decodeFloats(encodeFloats([1, -2, 2 ** -24, Infinity, NaN], 'f16'), 0, 5, 'f16')
    expect([...back.subarray(0, 4)]).toEqual([1, -2, 2 ** -24, Infinity])
    expect(Number.isNaN(back[4])).toBe(true)
  })

  it('f16ToNumber and f16Bits are inverse on every f16 bit pattern (NaNs stay NaN)', () => {
    for (let h = 0; h < 65536; h++) {
      const v = f16ToNumber(h)
      if (Number.isNaN(v)) {
        expect((h & 0x7c00) === 0x7c00 && (h & 0x3ff) !== 0).toBe(true)
        expect(Number.isNaN(f16ToNumber(toF16Bits(v)))).toBe(true)
      } else expect(toF16Bits(v)).toBe(h)
    }
  })

  it('rounds float32 to bfloat16 to nearest even and keeps NaN', () => {
    expect(toBf16Bits(1)).toBe(0x3f80)
    expect(toBf16Bits(-1.5)).toBe(0xbfc0)
    const back = decodeFloats(encodeFloats([3.140625, 1 / 3, NaN], 'bf16'), 0, 3, 'bf16')
    expect(back[0]).toBe(3.140625)
    expect(back[1]).toBeCloseTo(1 / 3, 2)
    expect(Number.isNaN(back[2])).toBe(true)
  })

  it('decodes from an unaligned byte offset', () => {
    const bytes = new Uint8Array(1 + 8)
    bytes.set(encodeFloats([1.5, -0.25], 'f32'), 1)
    expect([...decodeFloats(bytes, 1, 2, 'f32')]).toEqual([1.5, -0.25])
  })
})
