/**
 * A layer's weights streamed from a safetensors checkpoint into device buffers: each tensor's
 * raw bytes (F32, F16 or BF16, as stored) go up through a staging buffer and a conversion
 * kernel writes them in the device layout (f16 packed two per u32, or f32). The host holds one
 * tensor's raw bytes at a time, never the layer in f32.
 */
import { ErrorCodes, MoeError, type ModelShape, type WeightSource } from '@moe-route/core'
import type { GpuContext } from '../gpu/context.js'
import { grid1d, uniforms, type KernelProgram } from '../gpu/program.js'
import type { WeightsDtype } from '../kernels/expert-ffn/expert-ffn.program.js'
import { allocateLayerWeights, type DeviceLayerWeights } from '../weights.js'
import { openCheckpoint, type CheckpointDtype } from './checkpoint-file.js'

/** Tensor names of one MoE layer in a checkpoint layout. */
export function layerTensorNames(layout: 'mixtral' | 'olmoe', layer: number, experts: number): { router: string; gate: string[]; up: string[]; down: string[] } {
  const p = layout === 'mixtral' ? `model.layers.${layer}.block_sparse_moe` : `model.layers.${layer}.mlp`
  const [g, u, d] = layout === 'mixtral' ? ['w1', 'w3', 'w2'] : ['gate_proj', 'up_proj', 'down_proj']
  const list = (m: string) => Array.from({ length: experts }, (_, e) => `${p}.experts.${e}.${m}.weight`)
  return { router: `${p}.gate.weight`, gate: list(g), up: list(u), down: list(d) }
}

/** Source dtypes of checkpoint tensors and their code in the conversion kernel. */
const SRC: Record<CheckpointDtype, number> = { F32: 0, F16: 1, BF16: 2 }

/** Converts `count` values of `src` (F32/F16/BF16 words) into `dst` at value offset `dstOffset` (f16 packed or f32). */
const convertWgsl = (dst: WeightsDtype): string => /* wgsl */ `
struct Params { pairs: u32, srcType: u32, dstPairOffset: u32, _a: u32 };
@group(0) @binding(0) var<storage, read> src: array<u32>;
@group(0) @binding(1) var<storage, read_write> dst: array<${dst === 'f16' ? 'u32' : 'vec2<f32>'}>;
@group(0) @binding(2) var<uniform> params: Params;
fn pairAt(i: u32) -> vec2<f32> {
  if (params.srcType == 0u) { return vec2<f32>(bitcast<f32>(src[2u * i]), bitcast<f32>(src[2u * i + 1u])); }
  let w = src[i];
  if (params.srcType == 1u) { return unpack2x16float(w); }
  return vec2<f32>(bitcast<f32>(w << 16u), bitcast<f32>(w & 0xffff0000u));
}
@compute @workgroup_size(256)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
  let i = (wid.y * nwg.x + wid.x) * 256u + lid;
  if (i >= params.pairs) { return; }
  let v = pairAt(i);
  dst[params.dstPairOffset + i] = ${dst === 'f16' ? 'pack2x16float(v)' : 'v'};
}`

function convertProgram(dst: WeightsDtype): KernelProgram<{ pairs: number; srcType: number; dstPairOffset: number }> {
  return {
    name: 'convert-weights',
    cacheKey: `convert-weights|${dst}`,
    getShaderSource: () => convertWgsl(dst),
    getRunData: ({ pairs, srcType, dstPairOffset }) => ({ dispatch: grid1d(pairs / 256), uniforms: uniforms([pairs, srcType, dstPairOffset]) }),
  }
}

/**
 * Streams one MoE layer's weights from a safetensors file (or sharded index) into the device.
 * @throws MOE_ROUTE_ERR_SHAPE_MISMATCH when a tensor's shape disagrees with the model;
 * MOE_ROUTE_ERR_INPUT_INVALID for a missing tensor or a non-float dtype; the reader's coded
 * errors for a corrupt file.
 */
export async function loadSafetensorsWeights(ctx: GpuContext, source: Extract<WeightSource, { kind: 'safetensors' }>, shape: ModelShape, dtype: WeightsDtype): Promise<DeviceLayerWeights> {
  const { hidden: H, intermediate: I, experts: E } = shape
  const names = layerTensorNames(source.layout, source.layer, E)
  const ckpt = await openCheckpoint(source.file)
  const dw = allocateLayerWeights(ctx, shape, dtype, `moe-route weights ${source.file}`)
  try {
    const put = async (name: string, dims: readonly number[], dst: GPUBuffer, dstDtype: WeightsDtype, valueOffset: number) => {
      const { data, dtype: srcDtype } = await ckpt.bytes(name, dims)
      const staging = ctx.storage(data.byteLength, 'weights staging')
      ctx.device.queue.writeBuffer(staging, 0, data.buffer, data.byteOffset, data.byteLength)
      const rec = ctx.recorder('convert weights')
      rec.run(convertProgram(dstDtype), { pairs: data.byteLength / (SRC[srcDtype] === 0 ? 8 : 4), srcType: SRC[srcDtype], dstPairOffset: valueOffset / 2 }, [staging, dst])
      rec.releaseAfterSubmit(staging)
      await rec.submit()
    }
    await put(names.router, [E, H], dw.router, 'f32', 0)
    for (let e = 0; e < E; e++) {
      await put(names.gate[e], [I, H], dw.gate, dtype, e * I * H)
      await put(names.up[e], [I, H], dw.up, dtype, e * I * H)
      await put(names.down[e], [H, I], dw.down, dtype, e * I * H)
    }
    return dw
  } catch (e) {
    dw.destroy()
    throw e
  } finally {
    await ckpt.close()
  }
}
