import { describe, expect, it } from 'vitest'
import { BufferPool, bucketSize } from './buffer-pool.js'

/** A stand-in device: buffers are plain objects that record whether they were destroyed. */
function fakeDevice() {
  const made: { label: string; size: number; usage: number; destroyed: boolean; destroy(): void }[] = []
  const device = {
    createBuffer({ label, size, usage }: { label: string; size: number; usage: number }) {
      const b = { label, size, usage, destroyed: false, destroy() { b.destroyed = true } }
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
})
