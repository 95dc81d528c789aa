import { describe, expect, it } from 'vitest'
import { topKIndices, writeTopKPairs } from './routing.js'

describe('topKIndices', () => {
  it('takes the k best by value, ties to the lower index, over all indices or a candidate list in any order', () => {
    const row = [0, 0.5, 0.9, 0.5, 0.1, 0.9]
    const out = new Int32Array(3)
    topKIndices(row, 0, 6, 3, out)
    expect([...out]).toEqual([2, 5, 1])
    topKIndices(row, 0, 4, 3, out, [4, 3, 5, 1]) // candidates 4, 3, 5, 1
    expect([...out]).toEqual([5, 1, 3])
    const one = new Int32Array(1)
    topKIndices([1, 2, 3, 4], 2, 2, 1, one) // row[2..4)
    expect([...one]).toEqual([1])
    topKIndices(row, 0, 6, 0, new Int32Array(0)) // k = 0 writes nothing
  })
})

describe('writeTopKPairs', () => {
  it('renormalises over the k chosen (1/k when they sum to 0) or keeps the scores, and cuts pairs below minWeight', () => {
    const ids = new Int32Array(4)
    const w = new Float32Array(4)
    writeTopKPairs([0.2, 0.6, 0.2], 0, [1, 0], 2, true, 0, ids, w)
    expect([...ids.subarray(0, 2)]).toEqual([1, 0])
    expect([...w.subarray(0, 2)]).toEqual([Math.fround(0.75), Math.fround(0.25)])
    writeTopKPairs([0, 0], 0, [0, 1], 2, true, 1, ids, w)
    expect([...w.subarray(2, 4)]).toEqual([0.5, 0.5])
    writeTopKPairs([0.9, 1e-40], 0, [0, 1], 2, false, 1, ids, w, 2 ** -126)
    expect([...ids.subarray(2, 4)]).toEqual([0, -1])
    expect(w[3]).toBe(0)
  })
})
