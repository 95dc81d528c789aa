import { contiguousPlacement, createRouting, isMoeError, type DispatchContext, type PlacementMap, type Routing } from '@moe-route/core'
import { describe, expect, it } from 'vitest'
import { dynamicDispatch } from './dynamic-dispatch.js'
import { staticCapacity, staticDispatch } from './static-dispatch.js'
import { createDynamicGating } from './dynamic-gating.dispatcher.js'

/** A routing from per-token expert lists (weight 1/(j+1) for slot j unless given). */
function routing(experts: number, rows: number[][], sourceDevice?: number[], weights?: number[][]): Routing {
  const slots = Math.max(1, ...rows.map((r) => r.length))
  const ids = new Int32Array(rows.length * slots).fill(-1)
  const w = new Float32Array(rows.length * slots)
  rows.forEach((r, t) =>
    r.forEach((e, j) => {
      ids[t * slots + j] = e
      w[t * slots + j] = weights ? weights[t][j] : 1 / (j + 1)
    }),
  )
  return createRouting({
    tokens: rows.length,
    experts,
    topK: slots,
    expertIds: ids,
    weights: w,
    scores: new Float32Array(rows.length * experts),
    normalizeTopK: false,
    ...(sourceDevice ? { sourceDevice: Int32Array.from(sourceDevice) } : {}),
  })
}
const ctx = (experts: number, devices = 1, bytesPerToken = 8, placement?: PlacementMap): DispatchContext => ({
  placement: placement ?? contiguousPlacement(experts, devices),
  bytesPerToken,
})

describe('dynamic mode', () => {
  it('groups pairs by expert in token order with exact sizes', () => {
    const r = routing(4, [[2, 0], [0, 3], [2, 1], [3, 0]])
    const plan = dynamicDispatch(r, ctx(4))
    expect([...plan.counts]).toEqual([3, 1, 2, 2])
    expect([...plan.offsets]).toEqual([0, 3, 4, 6, 8])
    expect([...plan.rowToken]).toEqual([0, 1, 3, 2, 0, 2, 1, 3])
    expect([...plan.rowWeight]).toEqual([0.5, 1, 0.5, 0.5, 1, 1, 0.5, 1])
    expect(plan.paddingRows).toBe(0)
    expect(plan.capacity).toBeNull()
    expect(plan.dropped).toEqual([])
    expect(plan.exchange.collectives).toBe(0)
    expect(plan.memory.maskElements).toBe(0)
    expect(plan.memory.dispatchBufferBytes).toBe(8 * 8)
  })

  it('skips empty slots', () => {
    const plan = dynamicDispatch(routing(3, [[1], [], [1, 2]]), ctx(3))
    expect([...plan.counts]).toEqual([0, 2, 1])
    expect([...plan.rowToken]).toEqual([0, 2, 2])
  })

  it('models the size exchange and the per-pair payload between devices', () => {
    // 4 experts on 2 devices: 0,1 on device 0 and 2,3 on device 1
    const r = routing(4, [[0, 1], [2, 3], [0, 2], [3, 1]], [0, 0, 1, 1])
    const plan = dynamicDispatch(r, ctx(4, 2, 100))
    expect(plan.exchange.collectives).toBe(2)
    expect([...plan.exchange.sizeMessages]).toEqual([0, 2, 2, 0])
    expect([...plan.exchange.sizeBytes]).toEqual([0, 16, 16, 0])
    // device 0 sends token 1's two rows to device 1; device 1 sends token 2's row to 0 and token 3's to 0
    expect([...plan.exchange.payloadRows]).toEqual([2, 2, 2, 2])
    expect([...plan.exchange.payloadBytes]).toEqual([200, 200, 200, 200])
    expect(plan.exchange.payloadBytesCrossDevice).toBe(400)
    expect(plan.traffic.bytesCrossDevice).toBe(400)
    expect(plan.exchange.sizeBytesCrossDevice).toBe(32)
  })

  it('per-device token copies share one row between co-located experts (core tokenTraffic)', () => {
    const r = routing(4, [[0, 1], [2, 3], [0, 2], [3, 1]], [0, 0, 1, 1])
    const plan = dynamicDispatch(r, ctx(4, 2, 100), { tokenCopies: 'per-device' })
    expect([...plan.exchange.payloadRows]).toEqual([1, 1, 2, 2])
    expect(plan.traffic.bytesCrossDevice).toBe(300)
  })

  it('sends a replicated expert to replica t mod replicas', () => {
    const placement: PlacementMap = { devices: 2, experts: 2, replicas: [[0, 1], [1]], strategy: 'test' }
    const plan = dynamicDispatch(routing(2, [[0], [0], [0], [1]]), ctx(2, 2, 1, placement))
    expect([...plan.exchange.payloadRows]).toEqual([2, 2, 0, 0])
    // device 0 hosts expert 0, device 1 hosts experts 0 and 1
    expect([...plan.exchange.sizeMessages]).toEqual([0, 2, 1, 0])
  })
})

describe('static mode', () => {
  it('pads every expert to capacity and drops overflow in token order', () => {
    // 4 tokens, cap = ceil(0.5·4) = 2
    const r = routing(3, [[0, 1], [0, 2], [0, 1], [1, 0]])
    const plan = staticDispatch(r, ctx(3, 1, 10), { capacityFactor: 0.5 })
    expect(plan.capacity).toBe(2)
    expect(plan.capacityPerSource).toBe(2)
    expect([...plan.offsets]).toEqual([0, 2, 4, 6])
    expect([...plan.rowToken]).toEqual([0, 1, 0, 2, 1, -1])
    expect([...plan.rowWeight]).toEqual([1, 1, 0.5, 0.5, 0.5, 0])
    expect([...plan.counts]).toEqual([2, 2, 1])
    expect(plan.paddingRows).toBe(1)
    expect(plan.dropped).toEqual([
      { token: 2, expert: 0, weight: 1, reason: 'static-overflow', policy: 'dynamic-gating' },
      { token: 3, expert: 1, weight: 1, reason: 'static-overflow', policy: 'dynamic-gating' },
      { token: 3, expert: 0, weight: 0.5, reason: 'static-overflow', policy: 'dynamic-gating' },
    ])
    expect(plan.pairs).toBe(8)
    // one device: all E·cap slots stay local
    expect([...plan.traffic.sendRows]).toEqual([6])
    expect(plan.memory.maskElements).toBe(4 * 3 * 2)
  })

  it('choice priority fills every first choice before any second choice (fairseq top2gate)', () => {
    const r = routing(2, [[0, 1], [1, 0], [0, 1]])
    const token = staticDispatch(r, ctx(2), { capacityFraction: 0.4 }) // cap = ceil(1.2) = 2
    const choice = staticDispatch(r, ctx(2), { capacityFraction: 0.4, priority: 'choice' })
    expect(token.dropped.map((d) => [d.token, d.expert])).toEqual([[2, 0], [2, 1]])
    expect(choice.dropped.map((d) => [d.token, d.expert])).toEqual([[1, 0], [2, 1]])
    expect([...choice.rowToken]).toEqual([0, 2, 1, 0])
  })

  it('gives each source device its own segment and sends all E·cap slots', () => {
    // 4 experts on 2 devices; device 0 has 3 tokens, device 1 has 1: cap = ceil(0.5·3) = 2
    const r = routing(4, [[0, 2], [0, 3], [0, 1], [2, 0]], [0, 0, 0, 1])
    const plan = staticDispatch(r, ctx(4, 2, 100), { capacityFactor: 0.5 })
    expect(plan.segments).toBe(2)
    expect(plan.capacityPerSource).toBe(2)
    expect(plan.capacity).toBe(4)
    // expert 0: segment 0 = tokens 0, 1 (token 2 overflows), segment 1 = token 3 + padding
    expect([...plan.rowToken.subarray(0, 4)]).toEqual([0, 1, 3, -1])
    expect(plan.dropped.map((d) => [d.token, d.expert])).toEqual([[2, 0]])
    // each device sends cap = 2 slots of each of its 4 experts' buffers: 2 experts local, 2 remote
    expect([...plan.traffic.sendRows]).toEqual([4, 4, 4, 4])
    expect(plan.traffic.bytesCrossDevice).toBe(800)
    expect(plan.exchange.collectives).toBe(1)
    expect(plan.exchange.sizeBytesCrossDevice).toBe(0)
  })

  it('computes the paper and GShard capacities', () => {
    expect(staticCapacity(1024, { capacityFraction: 0.05 }, 2, 512)).toBe(52)
    expect(staticCapacity(1000, { capacityFraction: 0.05 }, 2, 512)).toBe(50)
    expect(staticCapacity(1000, { capacityFactor: 1 }, 2, 128)).toBe(1000)
    expect(staticCapacity(1000, { capacityFactor: 1.25, capacityRule: 'expert-share' }, 2, 8)).toBe(313)
    // the fraction wins over the factor
    expect(staticCapacity(100, { capacityFactor: 2, capacityFraction: 0.1 }, 2, 8)).toBe(10)
    expect(staticCapacity(0, { capacityFactor: 1 }, 2, 8)).toBe(0)
    expect(() => staticCapacity(10, { capacityFactor: 0 }, 2, 8)).toThrow(/capacityFactor/)
  })

  it('handles an empty batch', () => {
    const plan = staticDispatch(routing(3, []), ctx(3))
    expect(plan.rowToken.length).toBe(0)
    expect(plan.paddingRows).toBe(0)
  })
})

describe('input checks', () => {
  it('rejects a placement of another size', () => {
    const err = (() => {
      try {
        dynamicDispatch(routing(4, [[0]]), ctx(3))
      } catch (e) {
        return e
      }
    })()
    expect(isMoeError(err) && err.code).toBe('MOE_ROUTE_ERR_SHAPE_MISMATCH')
  })

  it('rejects a source device outside the placement', () => {
    expect(() => staticDispatch(routing(4, [[0], [1]], [0, 2]), ctx(4, 2))).toThrow(/token 1 is on device 2/)
  })
})

describe('createDynamicGating', () => {
  it('dispatches in the configured mode', () => {
    const r = routing(2, [[0], [0], [1]])
    expect(createDynamicGating().dispatch(r, ctx(2)).mode).toBe('dynamic')
    const s = createDynamicGating({ mode: 'static', capacityFraction: 0.34 }).dispatch(r, ctx(2))
    expect(s.mode).toBe('static')
    expect(s.capacity).toBe(2)
    expect(s.dropped).toEqual([])
  })
})
