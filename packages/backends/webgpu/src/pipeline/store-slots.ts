/**
 * Expert-store slots on the device: a device pipeline whose config has an expert store keeps
 * only `slots` experts' weights on the GPU (the router stays whole). The kernels read each
 * active expert from the slot the store put it in (the offsets' slot table); a miss uploads the
 * expert's bytes from host memory. Seeded weights are made on the device one expert at a time
 * and read back once into that host copy (device layout: f16 packed or f32, gate|up|down).
 */
import { ErrorCodes, MoeError, type LayerWeights, type ModelShape, type StoreDevice, type WeightSource } from '@moe-route/core'
import type { GpuContext } from '../gpu/context.js'
import { BufferUsage, MAP_READ_MODE, STORAGE_RW } from '../gpu/constants.js'
import { packF16 } from '../f16.js'
import type { WeightsDtype } from '../kernels/expert-ffn/expert-ffn.program.js'
import { initWeightsProgram } from '../kernels/init-weights/init-weights.program.js'
import { allocateLayerWeights, type DeviceLayerWeights } from '../weights.js'
import { seededWeightStreams } from '@moe-route/core'

/** Slot weights plus the store's view of them. */
export interface StoreSlots {
  /** Router E×H; gate/up/down hold `slots` experts (shape.experts = slots). */
  readonly weights: DeviceLayerWeights
  readonly device: StoreDevice
}

/**
 * Allocates `slots` expert slots and the whole router on the device, and builds the host copy
 * every miss uploads from.
 * @throws MOE_ROUTE_ERR_BACKEND_UNAVAILABLE for a safetensors source (stream it through the
 * store's own `weights` option on the CPU backend instead).
 */
export async function createStoreSlots(ctx: GpuContext, source: WeightSource, shape: ModelShape, dtype: WeightsDtype, slots: number): Promise<StoreSlots> {
  const { hidden: H, intermediate: I, experts: E } = shape
  if (!Number.isInteger(slots) || slots < 1 || slots > E) throw new MoeError(ErrorCodes.INPUT_INVALID, `an expert store needs 1 … ${E} slots, got ${slots}`, { path: '/store/options/slots' })
  if (source.kind === 'safetensors') {
    throw new MoeError(
      ErrorCodes.BACKEND_UNAVAILABLE,
      'an expert store on the WebGPU device pipeline takes seeded or host weights; for a safetensors checkpoint give the store its own `weights` option and run the CPU backend',
      { path: '/weights/file', plugin: 'webgpu' },
    )
  }
  const per = I * H * (dtype === 'f16' ? 2 : 4)
  const weights = allocateLayerWeights(ctx, { ...shape, experts: slots }, dtype, 'moe-route store slots', E)
  const { router, gate, up, down } = weights
  const host: Uint8Array[] = source.kind === 'seeded' ? await seededHostCopy(ctx, shape, dtype, source, router) : hostCopy(ctx, source.weights, dtype, router)
  const q = ctx.device.queue
  const device: StoreDevice = {
    slots,
    expertBytes: 3 * per,
    upload(slot, expert, bytes) {
      if (slot < 0 || slot >= slots) throw new MoeError(ErrorCodes.INPUT_INVALID, `store slot ${slot} is outside 0 … ${slots - 1}`, { plugin: 'webgpu' })
      if (bytes.byteLength !== 3 * per) throw new MoeError(ErrorCodes.SHAPE_MISMATCH, `expert ${expert}: ${bytes.byteLength} bytes, a slot holds ${3 * per}`, { plugin: 'webgpu' })
      q.writeBuffer(gate, slot * per, bytes.buffer, bytes.byteOffset, per)
      q.writeBuffer(up, slot * per, bytes.buffer, bytes.byteOffset + per, per)
      q.writeBuffer(down, slot * per, bytes.buffer, bytes.byteOffset + 2 * per, per)
    },
    async read(expert) {
      const b = host[expert]
      if (!b) throw new MoeError(ErrorCodes.INPUT_INVALID, `expert ${expert} is outside 0 … ${E - 1}`, { plugin: 'webgpu' })
      return b
    },
    flush: () => q.onSubmittedWorkDone(),
  }
  return { weights, device }
}

/** Host bytes of every expert from host f32 weights (f16 packed or f32), and the router uploaded. */
function hostCopy(ctx: GpuContext, w: LayerWeights, dtype: WeightsDtype, router: GPUBuffer): Uint8Array[] {
  ctx.device.queue.writeBuffer(router, 0, w.router.buffer, w.router.byteOffset, w.router.byteLength)
  return w.experts.map((x) => {
    const parts = [x.gate, x.up, x.down].map((a) => (dtype === 'f16' ? new Uint8Array(packF16(a).buffer) : new Uint8Array(a.buffer, a.byteOffset, a.byteLength)))
    const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0))
    let o = 0
    for (const p of parts) {
      out.set(p, o)
      o += p.byteLength
    }
    return out
  })
}

/**
 * Seeded weights made on the device expert by expert (the same values as the whole layer
 * generated at once: each expert is a slice of its matrix's stream) and read back into host
 * memory; the router is generated in place.
 */
async function seededHostCopy(ctx: GpuContext, shape: ModelShape, dtype: WeightsDtype, source: Extract<WeightSource, { kind: 'seeded' }>, router: GPUBuffer): Promise<Uint8Array[]> {
  const { hidden: H, intermediate: I, experts: E } = shape
  const n = I * H
  const per = n * (dtype === 'f16' ? 2 : 4)
  const s = seededWeightStreams(source.seed)
  const scratch = ctx.device.createBuffer({ label: 'moe-route store staging', size: 3 * per, usage: STORAGE_RW })
  const read = ctx.device.createBuffer({ label: 'moe-route store readback', size: 3 * per, usage: BufferUsage.MAP_READ | BufferUsage.COPY_DST })
  try {
    const rr = ctx.recorder('store router', { profile: false })
    rr.run(initWeightsProgram('f32'), { count: E * H, seed: s.router, std: source.routerStd ?? source.std }, [router])
    rr.submitNoWait()
    const out: Uint8Array[] = []
    for (let e = 0; e < E; e++) {
      const rec = ctx.recorder('store expert')
      const views = [s.gate, s.up, s.down].map((stream, m) => {
        // one matrix of this expert: elements e·n … (e+1)·n of the matrix's stream
        const view = ctx.device.createBuffer({ label: 'moe-route store matrix', size: per, usage: STORAGE_RW })
        rec.run(initWeightsProgram(dtype), { count: n, seed: stream, std: source.std, first: e * n }, [view])
        rec.copy(view, 0, scratch, m * per, per)
        return view
      })
      rec.copy(scratch, 0, read, 0, 3 * per)
      await rec.submit()
      for (const v of views) v.destroy()
      await read.mapAsync(MAP_READ_MODE)
      out.push(new Uint8Array(read.getMappedRange().slice(0)))
      read.unmap()
    }
    return out
  } finally {
    scratch.destroy()
    read.destroy()
  }
}
