import { readFileSync, writeFileSync } from 'node:fs'
import { ErrorCodes } from '@moe-route/core'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { expectMoeError, tempDir } from '../io/test-utils.js'
import { inspectJsonlTrace, readJsonlTrace, writeJsonlTrace, type TraceRecord } from './jsonl.js'

let tmp: ReturnType<typeof tempDir>
beforeEach(() => {
  tmp = tempDir()
})
afterEach(() => tmp.cleanup())

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = []
  for await (const x of it) out.push(x)
  return out
}

describe('JSONL traces', () => {
  it('round-trips records, filters a layer and summarises the file', async () => {
    const path = tmp.file('t.jsonl')
    const records: TraceRecord[] = [
      { layer: 0, token: 0, experts: [3, 5], weights: [0.75, 0.25] },
      { layer: 7, token: 0, experts: [1, 2], weights: [0.5, 0.5] },
      { layer: 0, token: 1, experts: [7, 0] },
    ]
    expect(await writeJsonlTrace(path, records)).toBe(3)
    expect(readFileSync(path, 'utf8').split('\n')[0]).toBe('{"layer":0,"token":0,"experts":[3,5],"weights":[0.75,0.25]}')
    expect(await collect(readJsonlTrace(path))).toEqual(records)
    expect((await collect(readJsonlTrace(path, { layer: 0 }))).map((r) => r.token)).toEqual([0, 1])
    expect(await inspectJsonlTrace(path)).toEqual({ records: 3, layers: [0, 7], minExperts: 8, topK: 2, hasWeights: false })
  })

  it('streams a large async source with backpressure and reads it back lazily', async () => {
    const path = tmp.file('big.jsonl')
    async function* gen() {
      for (let t = 0; t < 60_000; t++) yield { layer: 1, token: t, experts: [t % 8, (t + 1) % 8], weights: [0.6, 0.4] }
    }
    expect(await writeJsonlTrace(path, gen())).toBe(60_000)
    let n = 0
    let last = -1
    for await (const r of readJsonlTrace(path, { experts: 8, topK: 2 })) {
      n++
      last = r.token
    }
    expect([n, last]).toEqual([60_000, 59_999])
    // early exit closes the file without reading the rest
    for await (const r of readJsonlTrace(path)) if (r.token === 10) break
  })

  it('skips blank lines and accepts CRLF', async () => {
    const path = tmp.file('crlf.jsonl')
    writeFileSync(path, '{"layer":0,"token":0,"experts":[1]}\r\n\r\n{"layer":0,"token":1,"experts":[2]}\r\n')
    expect((await collect(readJsonlTrace(path))).map((r) => r.experts[0])).toEqual([1, 2])
  })

  it('reports an unwritable output path', async () => {
    await expectMoeError(writeJsonlTrace(tmp.file('no/such/dir/t.jsonl'), [{ layer: 0, token: 0, experts: [1] }]), ErrorCodes.INPUT_INVALID, /cannot write .*t\.jsonl/)
  })

  it('rejects a missing file with FILE_NOT_FOUND', async () => {
    await expectMoeError(collect(readJsonlTrace(tmp.file('none.jsonl'))), ErrorCodes.FILE_NOT_FOUND, /none\.jsonl/)
  })

  const good = '{"layer":0,"token":0,"experts":[1,2],"weights":[0.5,0.5]}'
  const cases: Array<[string, string, RegExp, { experts?: number; topK?: number }?]> = [
    ['a truncated last line', `${good}\n{"layer":0,"token":1,"exp`, /line 2: not valid JSON/],
    ['a record that is not an object', `${good}\n[1,2]`, /line 2: record is not a JSON object/],
    ['a missing layer', '{"token":0,"experts":[1]}', /line 1: "layer" must be/],
    ['a negative token', '{"layer":0,"token":-1,"experts":[1]}', /"token" must be/],
    ['empty experts', '{"layer":0,"token":0,"experts":[]}', /"experts" must be a non-empty array/],
    ['a fractional expert id', '{"layer":0,"token":0,"experts":[1.5]}', /expert id 1.5/],
    ['an expert id ≥ E', `${good}\n{"layer":0,"token":1,"experts":[1,8]}`, /line 2: expert id 8 is out of range: the model has 8 experts/, { experts: 8 }],
    ['a duplicate expert', '{"layer":0,"token":0,"experts":[4,4]}', /expert id 4 appears twice/],
    ['the wrong k', '{"layer":0,"token":0,"experts":[1,2,3]}', /has 3 experts, expected top-2/, { topK: 2 }],
    ['weights of the wrong length', '{"layer":0,"token":0,"experts":[1,2],"weights":[1]}', /"weights" must be an array of 2/],
    ['a NaN weight (written as a string)', '{"layer":0,"token":0,"experts":[1,2],"weights":["NaN",0.5]}', /weight "NaN" is not a finite number/],
    ['a null weight', '{"layer":0,"token":0,"experts":[1,2],"weights":[null,0.5]}', /weight null is not a finite/],
  ]
  for (const [what, text, pattern, opts] of cases) {
    it(`rejects ${what} with TRACE_CORRUPT naming file and line`, async () => {
      const path = tmp.file('bad.jsonl')
      writeFileSync(path, text)
      const err = await expectMoeError(collect(readJsonlTrace(path, opts)), ErrorCodes.TRACE_CORRUPT, pattern, /bad\.jsonl/)
      expect(err.details).toMatchObject({ file: path, record: expect.stringMatching(/^line \d+$/) })
    })
  }
})
