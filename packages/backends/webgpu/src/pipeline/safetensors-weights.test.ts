/**
 * Weights streamed from safetensors checkpoints into the device: F32, F16 and BF16 tensors in
 * the Mixtral and OLMoE namings, a sharded index, the engine reading `weights.file` from a
 * config, and the coded errors for wrong shapes, missing tensors and shard names that leave
 * the index's folder.
 */
import { afterAll, describe, expect, it, vi } from 'vitest'
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createMoe, isMoeError, seededLayerWeights, type LayerWeights, type ModelShape } from '@moe-route/core'
import { cpuBackend } from '@moe-route/backend-cpu'
import { decodeFloats, encodeFloats, randomHidden, writeSafetensors, type FloatDtype } from '@moe-route/workloads'
import { acquireDevice } from '../gpu/device.js'
import { GpuContext } from '../gpu/context.js'
import { readExpertWeights, readRouterWeight } from '../weights.js'
import { webgpuBackend } from '../plugin.js'
import { webgpuAdapterForTests } from '../testing/gpu-env.js'
import { layerTensorNames, loadSafetensorsWeights } from './safetensors-weights.js'

vi.setConfig({ testTimeout: 180_000 })
const adapter = await webgpuAdapterForTests()
const shape: ModelShape = { experts: 4, topK: 2, hidden: 32, intermediate: 48, normalizeTopK: true }
const dir = mkdtempSync(join(tmpdir(), 'moe-route-st-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** The layer's tensors as a safetensors record in `dtype`, layer `layer` of a checkpoint. */
function tensors(w: LayerWeights, layout: 'mixtral' | 'olmoe', layer: number, dtype: 'F32' | 'F16' | 'BF16') {
  const { hidden: H, intermediate: I } = w.shape
  const n = layerTensorNames(layout, layer, w.shape.experts)
  const out: Record<string, { dtype: typeof dtype; shape: number[]; data: Float32Array }> = {
    [n.router]: { dtype, shape: [w.shape.experts, H], data: w.router },
  }
  w.experts.forEach((x, e) => {
    out[n.gate[e]] = { dtype, shape: [I, H], data: x.gate }
    out[n.up[e]] = { dtype, shape: [I, H], data: x.up }
    out[n.down[e]] = { dtype, shape: [H, I], data: x.down }
  })
  return out
}

/** `values` rounded through `dtype` (what a checkpoint in that dtype holds). */
const rounded = (values: Float32Array, dtype: FloatDtype) => decodeFloats(encodeFloats(values, dtype), 0, values.length, dtype)

describe.skipIf(!adapter)(`safetensors weights on ${adapter}`, () => {
  const weights = seededLayerWeights(shape, 5, 0.05)

  it.each([
    ['F32', 'f32', 'mixtral'],
    ['F16', 'f16', 'olmoe'],
    ['BF16', 'bf16', 'mixtral'],
  ] as const)('streams %s tensors (%s, %s naming) into f32 device weights exactly', async (stDtype, fDtype, layout) => {
    const file = join(dir, `layer-${stDtype}.safetensors`)
    await writeSafetensors(file, tensors(weights, layout, 2, stDtype))
    const acquired = await acquireDevice()
    const ctx = new GpuContext(acquired)
    try {
      const dw = await loadSafetensorsWeights(ctx, { kind: 'safetensors', file, layer: 2, layout }, shape, 'f32')
      expect(Array.from(await readRouterWeight(ctx, dw))).toEqual(Array.from(rounded(weights.router, fDtype)))
      for (const e of [0, 3]) {
        const got = await readExpertWeights(ctx, dw, e)
        expect(Array.from(got.gate)).toEqual(Array.from(rounded(weights.experts[e].gate, fDtype)))
        expect(Array.from(got.down)).toEqual(Array.from(rounded(weights.experts[e].down, fDtype)))
      }
      dw.destroy()
    } finally {
      ctx.dispose()
      acquired.device.destroy()
    }
  })

  it('the engine reads `weights.file` of a config (a sharded index) and matches the CPU engine on the same weights', async () => {
    const all = tensors(weights, 'mixtral', 0, 'F32')
    const names = Object.keys(all)
    const half = Math.ceil(names.length / 2)
    const shards = [names.slice(0, half), names.slice(half)]
    const map: Record<string, string> = {}
    for (const [i, list] of shards.entries()) {
      const file = `model-0000${i + 1}-of-00002.safetensors`
      await writeSafetensors(join(dir, file), Object.fromEntries(list.map((n) => [n, all[n]])))
      for (const n of list) map[n] = file
    }
    const index = join(dir, 'model.safetensors.index.json')
    writeFileSync(index, JSON.stringify({ metadata: {}, weight_map: map }))
    const config = { model: shape, policies: [], backend: { use: 'webgpu', options: { weightsDtype: 'f32' } }, weights: { file: index, layer: 0, layout: 'mixtral' } }
    const gpu = createMoe({ config, plugins: [webgpuBackend] })
    const cpu = createMoe({ config: { ...config, backend: { use: 'cpu' } }, plugins: [cpuBackend], weights })
    const x = randomHidden(9, shape.hidden, 4)
    const g = await gpu.forward({ id: 0, tokens: 9, hidden: x })
    const c = await cpu.forward({ id: 0, tokens: 9, hidden: x })
    expect(Array.from(g.plan.counts)).toEqual(Array.from(c.plan.counts))
    let err = 0
    let scale = 0
    for (let i = 0; i < x.length; i++) {
      err = Math.max(err, Math.abs(g.output![i] - c.output![i]))
      scale = Math.max(scale, Math.abs(c.output![i]))
    }
    expect(err / scale).toBeLessThan(1e-4)
    await gpu.dispose()
  })

  it('refuses wrong shapes, missing tensors, integer dtypes and shard names outside the folder, with coded errors', async () => {
    const acquired = await acquireDevice()
    const ctx = new GpuContext(acquired)
    const code = async (p: Promise<unknown>) => p.then(() => 'resolved', (e) => (isMoeError(e) ? e.code : String(e)))
    try {
      const file = join(dir, 'layer-F32.safetensors')
      expect(await code(loadSafetensorsWeights(ctx, { kind: 'safetensors', file, layer: 2, layout: 'mixtral' }, { ...shape, hidden: 48 }, 'f32'))).toBe('MOE_ROUTE_ERR_SHAPE_MISMATCH')
      expect(await code(loadSafetensorsWeights(ctx, { kind: 'safetensors', file, layer: 7, layout: 'mixtral' }, shape, 'f32'))).toBe('MOE_ROUTE_ERR_INPUT_INVALID')
      const ints = join(dir, 'ints.safetensors')
      const n = layerTensorNames('mixtral', 0, shape.experts)
      await writeSafetensors(ints, { [n.router]: { dtype: 'I32', shape: [shape.experts, shape.hidden], bytes: new Uint8Array(shape.experts * shape.hidden * 4) } })
      expect(await code(loadSafetensorsWeights(ctx, { kind: 'safetensors', file: ints, layer: 0, layout: 'mixtral' }, shape, 'f32'))).toBe('MOE_ROUTE_ERR_INPUT_INVALID')
      const evil = join(dir, 'evil.safetensors.index.json')
      writeFileSync(evil, JSON.stringify({ weight_map: { [n.router]: '../../etc/passwd' } }))
      expect(await code(loadSafetensorsWeights(ctx, { kind: 'safetensors', file: evil, layer: 0, layout: 'mixtral' }, shape, 'f32'))).toBe('MOE_ROUTE_ERR_INPUT_INVALID')
      expect(await code(loadSafetensorsWeights(ctx, { kind: 'safetensors', file: join(dir, 'nope.safetensors'), layer: 0, layout: 'mixtral' }, shape, 'f32'))).toBe('MOE_ROUTE_ERR_FILE_NOT_FOUND')
    } finally {
      ctx.dispose()
      acquired.device.destroy()
    }
  })
})
