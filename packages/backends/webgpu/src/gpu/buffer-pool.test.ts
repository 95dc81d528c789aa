import { describe, expect, it } from 'vitest'
import { BufferPool, bucketSize } from './buffer-pool.js'

/** A stand-in device: buffers are plain objects that record whether they were destroyed. */
function fakeDevice() {
  const made: { label: string; size: number; usage: number; destroyed: boolean; relabels: number; destroy(): void }[] = []
  const device = {
    createBuffer({ label, size, usage }: { label: string; size: number; usage: number }) {
      let l = label
      const b = {
        get label() {
          return l
        },
        // counts writes (each crosses into the native binding on a real device)
        set label(v: string) {
          l = v
          b.relabels++
        },
        size,
        usage,
        destroyed: false,
        relabels: 0,
        destroy() {
          b.destroyed = true
        },
      }
      made.push(b)
      return b
    },
  }
  return { device: device as unknown as GPUDevice, made }
}

const MiB = 2 ** 20

describe('BufferPool', () => {
  it('reuses a released buffer of the same bucket and usage', () => {
    const { device } = fakeDevice()
    const pool = new BufferPool(device, 64 * MiB)
    const a = pool.acquire(1000, 0x80, 'a')
    pool.release(a)
    expect(pool.acquire(bucketSize(1000) - 8, 0x80, 'b')).toBe(a)
    expect(pool.acquire(1000, 0x84, 'c')).not.toBe(a) // other usage
    expect(pool.created).toBe(2)
  })

  it('past the cap, destroys the least recently released buffers and keeps the working set of the last batch', () => {
    const { device } = fakeDevice()
    const pool = new BufferPool(device, 100 * MiB)
    // an earlier batch shape: 96 MiB of free buffers
    const old = [pool.acquire(40 * MiB, 0x80, 'old'), pool.acquire(40 * MiB, 0x80, 'old')] // buckets of 48 MiB
    pool.release(...old)
    // the current shape: 64 MiB (one bucket) used and released every batch
    for (let batch = 0; batch < 5; batch++) {
      const big = pool.acquire(50 * MiB, 0x80, 'big') // bucket 64 MiB
      pool.release(big)
    }
    expect(pool.created).toBe(3) // the big buffer is created once, then reused by every batch
    expect(old.every((b) => (b as unknown as { destroyed: boolean }).destroyed)).toBe(true)
    expect(pool.evicted).toBe(2)
    expect(pool.bytes).toBe(64 * MiB)
  })

  it('a buffer larger than the cap is destroyed on release; a double release is ignored; clear() destroys all', () => {
    const { device, made } = fakeDevice()
    const pool = new BufferPool(device, 10 * MiB)
    const huge = pool.acquire(20 * MiB, 0x80, 'huge')
    pool.release(huge)
    expect(made[0].destroyed).toBe(true)
    const small = pool.acquire(1 * MiB, 0x80, 'small')
    pool.release(small, small)
    expect(pool.bytes).toBe(1 * MiB)
    pool.clear()
    expect(made[1].destroyed).toBe(true)
    expect(pool.bytes).toBe(0)
  })

  it('hands each label back the buffer it last served under, not the last one released (no relabel), else the most recently released', () => {
    const { device, made } = fakeDevice()
    const pool = new BufferPool(device, 64 * MiB)
    const [a, b, c] = ['ids', 'weights', 'scratch'].map((l) => pool.acquire(32, 0x80, l))
    // released in acquire order: plain LIFO would give 'ids' the scratch buffer
    pool.release(a, b, c)
    expect(pool.acquire(32, 0x80, 'ids')).toBe(a)
    expect(pool.acquire(32, 0x80, 'weights')).toBe(b)
    expect(pool.acquire(32, 0x80, 'scratch')).toBe(c)
    expect(made.map((m) => m.relabels)).toEqual([0, 0, 0])
    pool.release(c, b, a)
    // no buffer served under this label: the most recently released one, relabelled
    const d = pool.acquire(32, 0x80, 'tokenRows')
    expect(d).toBe(a)
    expect(made[0].label).toBe('tokenRows')
    expect(made[0].relabels).toBe(1)
    expect(pool.bytes).toBe(64)
    expect(pool.created).toBe(3)
  })

  it('evicts by release order after a buffer was taken from the middle of its free list', () => {
    const { device, made } = fakeDevice()
    const pool = new BufferPool(device, 3 * MiB)
    const [x, y, z] = ['x', 'y', 'z'].map((l) => pool.acquire(MiB, 0x80, l))
    pool.release(x, y, z)
    expect(pool.acquire(MiB, 0x80, 'y')).toBe(y) // from the middle
    const w = pool.acquire(2 * MiB, 0x80, 'w')
    pool.release(w) // 4 MiB free: the least recently released (x) goes
    expect(made.filter((m) => m.destroyed).map((m) => m.label)).toEqual(['x'])
    pool.release(y) // 4 MiB again: z (released before w and y) goes next
    expect(made.filter((m) => m.destroyed).map((m) => m.label)).toEqual(['x', 'z'])
    expect(pool.evicted).toBe(2)
    expect(pool.bytes).toBe(3 * MiB)
    // an evicted buffer released again is not pooled again
    pool.release(x)
    expect(pool.bytes).toBe(3 * MiB)
  })
})
