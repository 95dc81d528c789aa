import { writeFileSync, readFileSync } from 'node:fs'
import { ErrorCodes } from '@moe-route/core'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { expectMoeError, tempDir } from '../io/test-utils.js'
import { openSafetensors, writeSafetensors } from './safetensors.js'

let tmp: ReturnType<typeof tempDir>
beforeEach(() => {
  tmp = tempDir()
})
afterEach(() => tmp.cleanup())

/** Builds a raw safetensors file from a header object and a data section. */
function rawFile(header: unknown, data: Uint8Array, lengthOverride?: bigint): Buffer {
  const json = Buffer.from(typeof header === 'string' ? header : JSON.stringify(header))
  const len = Buffer.alloc(8)
  len.writeBigUInt64LE(lengthOverride ?? BigInt(json.length))
  return Buffer.concat([len, json, data])
}

describe('writeSafetensors / openSafetensors', () => {
  it('round-trips F32, F16, BF16 and F64 tensors and metadata', async () => {
    const path = tmp.file('a.safetensors')
    const values = [0, 1, -2.5, 0.333251953125, 65504, -1e-3]
    await writeSafetensors(
      path,
      {
        f32: { dtype: 'F32', shape: [2, 3], data: values },
        f16: { dtype: 'F16', shape: [6], data: values },
        bf16: { dtype: 'BF16', shape: [3, 2], data: values },
        f64: { dtype: 'F64', shape: [6], data: values },
        ids: { dtype: 'I32', shape: [2], bytes: new Uint8Array(new Int32Array([7, -1]).buffer) },
      },
      { format: 'pt' },
    )
    const st = await openSafetensors(path)
    try {
      expect(st.names).toEqual(['f32', 'f16', 'bf16', 'f64', 'ids'])
      expect(st.metadata).toEqual({ format: 'pt' })
      expect(st.headerLength % 8).toBe(0)
      expect(st.info('f32')).toMatchObject({ dtype: 'F32', shape: [2, 3], elements: 6, dataOffsets: [0, 24], byteLength: 24 })
      expect(st.info('f32').fileOffset).toBe(8 + st.headerLength)
      expect([...(await st.readTensor('f32'))]).toEqual([...Float32Array.from(values)])
      expect([...(await st.readTensor('f64'))]).toEqual([...Float32Array.from(values)])
      const f16 = await st.readTensor('f16')
      expect(f16[3]).toBe(0.333251953125) // exactly representable in f16
      expect(f16[4]).toBe(65504) // max f16
      expect(f16[5]).toBeCloseTo(-1e-3, 6)
      const bf16 = await st.readTensor('bf16')
      expect(bf16[2]).toBe(-2.5)
      expect(bf16[3]).toBeCloseTo(0.3333, 2)
      expect(Math.abs(bf16[3] - 0.333251953125)).toBeGreaterThan(0) // bf16 has fewer mantissa bits
      expect([...new Int32Array((await st.readTensorBytes('ids')).buffer)]).toEqual([7, -1])
      expect([...(await st.readRows('f32', 1, 1))]).toEqual([...Float32Array.from(values.slice(3))])
    } finally {
      await st.close()
    }
  })

  it('reads only the bytes of the requested tensor (a corrupt neighbour does not matter)', async () => {
    const path = tmp.file('b.safetensors')
    await writeSafetensors(path, { a: { dtype: 'F32', shape: [2], data: [1, 2] }, b: { dtype: 'F32', shape: [2], data: [3, 4] } })
    const st = await openSafetensors(path)
    const buf = readFileSync(path)
    // overwrite a's bytes with NaN: b must be unaffected
    buf.writeFloatLE(NaN, 8 + st.headerLength)
    writeFileSync(path, buf)
    expect([...(await st.readTensor('b'))]).toEqual([3, 4])
    expect(Number.isNaN((await st.readTensor('a'))[0])).toBe(true)
    await st.close()
    await expectMoeError(st.readTensor('b'), ErrorCodes.INPUT_INVALID, /closed/)
  })

  it('names the valid tensors when one is missing, and refuses to decode integers as floats', async () => {
    const path = tmp.file('c.safetensors')
    await writeSafetensors(path, { x: { dtype: 'U8', shape: [1], bytes: new Uint8Array([1]) } })
    const st = await openSafetensors(path)
    await expectMoeError(st.readTensor('y'), ErrorCodes.INPUT_INVALID, /no tensor "y"/, /tensors: x/)
    await expectMoeError(st.readTensor('x'), ErrorCodes.TRACE_CORRUPT, /dtype U8 is not a float type/)
    await expectMoeError(st.readRows('x', 0, 2), ErrorCodes.TRACE_CORRUPT, /not a float/)
    await st.close()
  })

  it('rejects a missing file with FILE_NOT_FOUND', async () => {
    const err = await expectMoeError(openSafetensors(tmp.file('nope.safetensors')), ErrorCodes.FILE_NOT_FOUND, /nope\.safetensors/)
    expect(err.details.file).toBe(tmp.file('nope.safetensors'))
  })

  const f32 = (n: number) => new Uint8Array(n * 4)
  const cases: Array<[string, () => Buffer, RegExp]> = [
    ['a file shorter than 8 bytes', () => Buffer.from([1, 2, 3]), /too short/],
    ['a header length past the end of the file', () => rawFile({}, new Uint8Array(0), 1000n), /runs past the end/],
    ['a huge header length', () => rawFile({}, new Uint8Array(0), 1n << 40n), /exceeds/],
    ['a header that is not JSON', () => rawFile('{"a": [', new Uint8Array(0)), /not valid UTF-8 JSON/],
    ['a header that is a JSON array', () => rawFile([1, 2], new Uint8Array(0)), /not an object/],
    ['an unknown dtype', () => rawFile({ t: { dtype: 'F128', shape: [1], data_offsets: [0, 16] } }, new Uint8Array(16)), /tensor "t".*unknown dtype "F128"/],
    ['a bad shape', () => rawFile({ t: { dtype: 'F32', shape: [-1], data_offsets: [0, 4] } }, f32(1)), /shape \[-1\]/],
    ['bad data_offsets', () => rawFile({ t: { dtype: 'F32', shape: [1], data_offsets: [4, 0] } }, f32(1)), /data_offsets \[4,0\]/],
    ['offsets that disagree with the shape', () => rawFile({ t: { dtype: 'F32', shape: [3], data_offsets: [0, 8] } }, f32(3)), /span 8 bytes .* needs 12/],
    ['offsets past the end of the file (truncated)', () => rawFile({ t: { dtype: 'F32', shape: [4], data_offsets: [0, 16] } }, f32(2)), /past the end of the data section/],
    [
      'overlapping tensors',
      () => rawFile({ a: { dtype: 'F32', shape: [2], data_offsets: [0, 8] }, b: { dtype: 'F32', shape: [2], data_offsets: [4, 12] } }, f32(3)),
      /tensor "b".*overlap tensor "a"/,
    ],
    ['non-string metadata', () => rawFile({ __metadata__: { a: 1 } }, new Uint8Array(0)), /__metadata__\.a/],
  ]
  for (const [what, make, pattern] of cases) {
    it(`rejects ${what} with TRACE_CORRUPT naming the file`, async () => {
      const path = tmp.file('bad.safetensors')
      writeFileSync(path, make())
      const err = await expectMoeError(openSafetensors(path), ErrorCodes.TRACE_CORRUPT, pattern, /bad\.safetensors/)
      expect(err.details.file).toBe(path)
      expect(err.details.record).toBeDefined()
    })
  }

  it('detects a file truncated after open', async () => {
    const path = tmp.file('t.safetensors')
    await writeSafetensors(path, { a: { dtype: 'F32', shape: [4], data: [1, 2, 3, 4] } })
    const st = await openSafetensors(path)
    const buf = readFileSync(path)
    writeFileSync(path, buf.subarray(0, buf.length - 4))
    await expectMoeError(st.readTensor('a'), ErrorCodes.TRACE_CORRUPT, /truncated/, /tensor "a"/)
    await st.close()
  })
})
