import { describe, expect, it } from 'vitest'
import { quantile, quantileSorted } from './quantile.js'

describe('quantile (linear interpolation, NumPy default)', () => {
  it('matches numpy.quantile on known values', () => {
    // np.quantile([1, 2, 3, 4], [0, .25, .5, .95, 1]) -> [1, 1.75, 2.5, 3.85, 4]
    const v = [4, 1, 3, 2]
    expect([0, 0.25, 0.5, 0.95, 1].map((q) => quantile(v, q))).toEqual([1, 1.75, 2.5, 3.8499999999999996, 4])
    // np.quantile([10, 20, 30, 40, 50], .9) -> 46.0
    expect(quantile([10, 20, 30, 40, 50], 0.9)).toBeCloseTo(46, 12)
  })

  it('one value is every quantile; none is NaN; q is clamped to [0, 1]', () => {
    expect(quantile([7], 0.99)).toBe(7)
    expect(quantile([], 0.5)).toBeNaN()
    expect(quantile([1, 2], 2)).toBe(2)
    expect(quantile([1, 2], -1)).toBe(1)
  })

  it('sorts numerically (not as strings), does not modify the input and reads typed arrays', () => {
    const v = [10, 9, 100, 2]
    expect(quantile(v, 0.5)).toBe(9.5)
    expect(v).toEqual([10, 9, 100, 2])
    expect(quantile(new Float32Array([3, 1, 2]), 0.5)).toBe(2)
    expect(quantileSorted([1, 2, 3], 0.5)).toBe(2)
  })
})
