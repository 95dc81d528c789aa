import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { createMoe, seededLayerWeights, type ModelShape } from '@moe-route/core'
import { layerTensorNames, writeSafetensors, type SafetensorsTensorInput } from '@moe-route/workloads'
import { describe, expect, it } from 'vitest'
import { cpuBackend, createCpuBackend, loadCpuWeights } from './index.js'
import { randomHidden } from '@moe-route/workloads'

const shape: ModelShape = { experts: 4, topK: 2, hidden: 8, intermediate: 12, normalizeTopK: false }
const dir = mkdtempSync(join(tmpdir(), 'moe-cpu-weights-'))

/** Writes one layer of seeded weights in a checkpoint layout (experts as F32, or F16/BF16). */
async function checkpoint(file: string, layout: 'mixtral' | 'olmoe', layer: number, dtype: 'F32' | 'F16' | 'BF16' = 'F32') {
  const w = seededLayerWeights(shape, 9, 0.3)
  const n = layerTensorNames(layout, layer, shape.experts)
  const t: Record<string, SafetensorsTensorInput> = { [n.router]: { dtype: 'F32', shape: [4, 8], data: w.router } }
  w.experts.forEach((e, i) => {
    t[n.gate[i]] = { dtype, shape: [12, 8], data: e.gate }
    t[n.up[i]] = { dtype, shape: [12, 8], data: e.up }
    t[n.down[i]] = { dtype, shape: [8, 12], data: e.down }
  })
  await writeSafetensors(join(dir, file), t)
  return w
}

describe('backend-cpu loadWeights (core Backend contract)', () => {
  it('reads a safetensors layer written by writeSafetensors: exactly the weights that were written', async () => {
    const w = await checkpoint('mixtral.safetensors', 'mixtral', 3)
    const read = await createCpuBackend().loadWeights!({ kind: 'safetensors', file: join(dir, 'mixtral.safetensors'), layer: 3, layout: 'mixtral' }, shape)
    expect(read.router).toEqual(w.router)
    read.experts.forEach((e, i) => {
      expect(e.gate).toEqual(w.experts[i].gate)
      expect(e.up).toEqual(w.experts[i].up)
      expect(e.down).toEqual(w.experts[i].down)
    })
  })

  it('the engine runs a layer from the file (olmoe naming, BF16 experts) like the same weights in memory', async () => {
    await checkpoint('olmoe.safetensors', 'olmoe', 0, 'BF16')
    const fromFile = await loadCpuWeights({ kind: 'safetensors', file: join(dir, 'olmoe.safetensors'), layer: 0, layout: 'olmoe' }, shape)
    const config = { model: shape }
    const hidden = randomHidden(16, shape.hidden, 4)
    const a = await createMoe({ config, plugins: [cpuBackend], weights: { kind: 'safetensors', file: join(dir, 'olmoe.safetensors'), layer: 0, layout: 'olmoe' } }).forward({ id: 0, tokens: 16, hidden })
    const b = await createMoe({ config, plugins: [cpuBackend], weights: fromFile }).forward({ id: 0, tokens: 16, hidden })
    expect(a.output).toEqual(b.output)
    expect(Math.max(...a.output!.map(Math.abs))).toBeGreaterThan(0)
  })

  it('refuses a shape that is not the model’s, a missing tensor, a shard path that leaves its folder, and non-finite weights', async () => {
    await checkpoint('l0.safetensors', 'mixtral', 0)
    const src = (file: string, layer = 0) => ({ kind: 'safetensors' as const, file: join(dir, file), layer, layout: 'mixtral' as const })
    await expect(loadCpuWeights(src('l0.safetensors'), { ...shape, intermediate: 24 })).rejects.toMatchObject({ code: 'MOE_ROUTE_ERR_SHAPE_MISMATCH' })
    await expect(loadCpuWeights(src('l0.safetensors', 1), shape)).rejects.toMatchObject({ code: 'MOE_ROUTE_ERR_INPUT_INVALID', message: expect.stringMatching(/has no tensor model\.layers\.1\.block_sparse_moe\.gate\.weight/) })
    writeFileSync(join(dir, 'escape.safetensors.index.json'), JSON.stringify({ weight_map: { 'model.layers.0.block_sparse_moe.gate.weight': '../../etc/x.safetensors' } }))
    await expect(loadCpuWeights(src('escape.safetensors.index.json'), shape)).rejects.toMatchObject({ code: 'MOE_ROUTE_ERR_INPUT_INVALID', message: expect.stringMatching(/is not a plain file name/) })
    const n = layerTensorNames('mixtral', 0, 4)
    const nan = Object.fromEntries([n.router, ...n.gate, ...n.up, ...n.down].map((name) => [name, { dtype: 'F32' as const, shape: name === n.router ? [4, 8] : name.includes('w2') ? [8, 12] : [12, 8], data: new Float32Array(name === n.router ? 32 : 96).fill(NaN) }]))
    await writeSafetensors(join(dir, 'nan.safetensors'), nan)
    await expect(loadCpuWeights(src('nan.safetensors'), shape)).rejects.toMatchObject({ code: 'MOE_ROUTE_ERR_TRACE_CORRUPT' })
  })
})
