import { writeFileSync } from 'node:fs'
import { ErrorCodes } from '@moe-route/core'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { expectMoeError, tempDir } from '../io/test-utils.js'
import { openNpy, writeNpy } from './npy.js'

let tmp: ReturnType<typeof tempDir>
beforeEach(() => {
  tmp = tempDir()
})
afterEach(() => tmp.cleanup())

/** A .npy v1.0 file with the given header text and data bytes. */
function rawNpy(header: string, data: Uint8Array, version = 1): Buffer {
  const lenBytes = version === 1 ? 2 : 4
  const head = Buffer.alloc(8 + lenBytes)
  Buffer.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, version, 0]).copy(head)
  if (version === 1) head.writeUInt16LE(header.length, 8)
  else head.writeUInt32LE(header.length, 8)
  return Buffer.concat([head, Buffer.from(header, 'latin1'), data])
}

describe('openNpy / writeNpy', () => {
  it('round-trips float32 and float16 [T × E] and streams rows in chunks', async () => {
    const data = Float32Array.from({ length: 5 * 4 }, (_, i) => i * 0.5 - 3)
    for (const dtype of ['f32', 'f16', 'f64'] as const) {
      const path = tmp.file(`a-${dtype}.npy`)
      await writeNpy(path, data, [5, 4], dtype)
      const npy = await openNpy(path)
      expect(npy).toMatchObject({ version: '1.0', dtype, shape: [5, 4], rows: 5, rowElements: 4 })
      expect(npy.dataOffset % 64).toBe(0)
      expect([...(await npy.readRows(0, 5))]).toEqual([...data]) // multiples of 0.5 are exact in f16
      const chunks = []
      for await (const c of npy.chunks(2)) chunks.push([c.start, c.rows, c.data.length])
      expect(chunks).toEqual([
        [0, 2, 8],
        [2, 2, 8],
        [4, 1, 4],
      ])
      await npy.close()
    }
  })

  it('reads format 2.0 headers and 1-d shapes', async () => {
    const path = tmp.file('v2.npy')
    const header = "{'descr': '<f4', 'fortran_order': False, 'shape': (3,), }\n"
    writeFileSync(path, rawNpy(header, new Uint8Array(new Float32Array([1, 2, 3]).buffer), 2))
    const npy = await openNpy(path)
    expect(npy.version).toBe('2.0')
    expect([...(await npy.readRows(1, 2))]).toEqual([2, 3])
    await expectMoeError(npy.readRows(2, 2), ErrorCodes.INPUT_INVALID, /outside/)
    await npy.close()
  })

  it('rejects a missing file with FILE_NOT_FOUND', async () => {
    await expectMoeError(openNpy(tmp.file('missing.npy')), ErrorCodes.FILE_NOT_FOUND, /missing\.npy/)
  })

  const f4 = (n: number) => new Uint8Array(n * 4)
  const hdr = (descr: string, shape: string, fo = 'False') => `{'descr': '${descr}', 'fortran_order': ${fo}, 'shape': ${shape}, }\n`
  const cases: Array<[string, () => Buffer, RegExp]> = [
    ['a tiny file', () => Buffer.from([0x93, 0x4e]), /too short/],
    ['a bad magic string', () => Buffer.from('PK\x03\x04 this is a zip file'), /magic/],
    ['an unknown version', () => rawNpy(hdr('<f4', '(1,)'), f4(1), 9), /version 9/],
    ['a header length past the end', () => rawNpy(hdr('<f4', '(1,)'), f4(0)).subarray(0, 20), /runs past the end/],
    ['a header that is not a dict', () => rawNpy('garbage\n', f4(1)), /not a dict literal/],
    ['a header without shape', () => rawNpy("{'descr': '<f4', 'fortran_order': False}\n", f4(1)), /no 'shape'/],
    ['a non-integer shape', () => rawNpy(hdr('<f4', '(2, x)'), f4(2)), /bad shape/],
    ['an integer dtype', () => rawNpy(hdr('<i4', '(2, 2)'), f4(4)), /dtype '<i4' is not supported/],
    ['a big-endian float dtype', () => rawNpy(hdr('>f4', '(2, 2)'), f4(4)), /dtype '>f4'/],
    ['Fortran order', () => rawNpy(hdr('<f4', '(2, 2)', 'True'), f4(4)), /fortran_order/],
    ['truncated data', () => rawNpy(hdr('<f4', '(4, 8)'), f4(31)), /truncated.*needs/],
    ['trailing bytes', () => rawNpy(hdr('<f2', '(2, 2)'), f4(3)), /trailing bytes/],
  ]
  for (const [what, make, pattern] of cases) {
    it(`rejects ${what} with TRACE_CORRUPT naming the file`, async () => {
      const path = tmp.file('bad.npy')
      writeFileSync(path, make())
      const err = await expectMoeError(openNpy(path), ErrorCodes.TRACE_CORRUPT, pattern, /bad\.npy/)
      expect(err.details.file).toBe(path)
    })
  }
})
