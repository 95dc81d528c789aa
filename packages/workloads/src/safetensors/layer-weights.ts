/**
 * One MoE layer's weights from a safetensors checkpoint into host f32 arrays (core's
 * `LayerWeights`): the router and every expert's gate, up and down projections, in the
 * `mixtral` or `olmoe` tensor naming, from one file or from the shards of a
 * `*.safetensors.index.json`. Every tensor's shape is checked against the model before its
 * bytes are read, so the file never decides how much is allocated; non-finite weights are
 * refused.
 */
import { basename, dirname, join } from 'node:path'
import { ErrorCodes, MoeError, type ExpertWeights, type LayerWeights, type ModelShape } from '@moe-route/core'
import { corrupt, invalid } from '../io/errors.js'
import { openForRead } from '../io/file.js'
import { openSafetensors, type SafetensorsFile } from './safetensors.js'

/** Tensor names of one MoE layer in a checkpoint layout (Hugging Face Mixtral / OLMoE naming). */
export function layerTensorNames(layout: 'mixtral' | 'olmoe', layer: number, experts: number): { router: string; gate: string[]; up: string[]; down: string[] } {
  const p = layout === 'mixtral' ? `model.layers.${layer}.block_sparse_moe` : `model.layers.${layer}.mlp`
  const [g, u, d] = layout === 'mixtral' ? ['w1', 'w3', 'w2'] : ['gate_proj', 'up_proj', 'down_proj']
  const list = (m: string) => Array.from({ length: experts }, (_, e) => `${p}.experts.${e}.${m}.weight`)
  return { router: `${p}.gate.weight`, gate: list(g), up: list(u), down: list(d) }
}

/** Where to read a layer from. */
export interface SafetensorsLayerSource {
  /** A `.safetensors` file or a `.safetensors.index.json` naming shards next to it. */
  readonly file: string
  readonly layer: number
  readonly layout: 'mixtral' | 'olmoe'
}

const FLOAT_DTYPES = new Set(['F32', 'F16', 'BF16'])

/**
 * Reads one layer's weights into f32 (F32, F16 or BF16 tensors).
 * @throws MOE_ROUTE_ERR_SHAPE_MISMATCH when a tensor's shape is not the model's;
 * MOE_ROUTE_ERR_INPUT_INVALID for a missing tensor, a non-float dtype or a shard name that is
 * not a plain file name; MOE_ROUTE_ERR_TRACE_CORRUPT for a corrupt file or a non-finite weight;
 * MOE_ROUTE_ERR_FILE_NOT_FOUND for a missing file.
 * @example
 * const w = await readSafetensorsLayer({ file: 'model.safetensors.index.json', layer: 0, layout: 'mixtral' }, shape)
 */
export async function readSafetensorsLayer(source: SafetensorsLayerSource, shape: ModelShape): Promise<LayerWeights> {
  const { experts: E, hidden: H, intermediate: I } = shape
  const names = layerTensorNames(source.layout, source.layer, E)
  const shards = source.file.endsWith('.json') ? await readIndex(source.file) : null
  const open = new Map<string, SafetensorsFile>()
  const fileOf = (name: string): string => {
    if (!shards) return source.file
    const shard = shards.get(name)
    if (!shard) throw invalid(`${source.file} maps no shard for tensor ${name}`, { file: source.file })
    // a shard is a file next to the index: never a path that leaves its folder
    if (basename(shard) !== shard || shard === '..' || shard === '.') throw invalid(`${source.file}: shard name ${JSON.stringify(shard)} is not a plain file name`, { file: source.file })
    return join(dirname(source.file), shard)
  }
  const read = async (name: string, dims: readonly [number, number]): Promise<Float32Array> => {
    const path = fileOf(name)
    let st = open.get(path)
    if (!st) open.set(path, (st = await openSafetensors(path)))
    if (!st.names.includes(name)) throw invalid(`${path} has no tensor ${name} (layer ${source.layer}, ${source.layout} naming)`, { file: path, record: name })
    const info = st.info(name)
    if (info.shape.length !== 2 || info.shape[0] !== dims[0] || info.shape[1] !== dims[1]) {
      throw new MoeError(ErrorCodes.SHAPE_MISMATCH, `${path}: tensor ${name} has shape [${info.shape}], the model needs [${dims}]`, { file: path, record: name })
    }
    if (!FLOAT_DTYPES.has(info.dtype)) throw invalid(`${path}: tensor ${name} is ${info.dtype}; weights must be F32, F16 or BF16`, { file: path, record: name })
    const values = await st.readTensor(name)
    for (let i = 0; i < values.length; i++) {
      if (!Number.isFinite(values[i])) throw corrupt(path, `tensor "${name}" element ${i}`, `weight ${values[i]} is not finite`)
    }
    return values
  }
  try {
    const router = await read(names.router, [E, H])
    const experts: ExpertWeights[] = []
    for (let e = 0; e < E; e++) {
      experts.push({ gate: await read(names.gate[e], [I, H]), up: await read(names.up[e], [I, H]), down: await read(names.down[e], [H, I]) })
    }
    return { shape, router, experts }
  } finally {
    for (const st of open.values()) await st.close()
  }
}

/** Largest safetensors index read (64 MiB; real ones are a few hundred KiB). */
const MAX_INDEX_BYTES = 64 * 2 ** 20

async function readIndex(file: string): Promise<Map<string, string>> {
  const { handle, size } = await openForRead(file) // a regular file, or FILE_NOT_FOUND
  let text: string
  try {
    if (size > MAX_INDEX_BYTES) throw corrupt(file, 'index', `is ${size} bytes, more than the ${MAX_INDEX_BYTES} a safetensors index may have`)
    text = await handle.readFile('utf8')
  } finally {
    await handle.close()
  }
  let index: { weight_map?: unknown }
  try {
    index = JSON.parse(text)
  } catch (cause) {
    throw corrupt(file, 'JSON', `not valid JSON: ${(cause as Error).message}`, cause)
  }
  if (!index || typeof index !== 'object' || !index.weight_map || typeof index.weight_map !== 'object' || Array.isArray(index.weight_map)) {
    throw corrupt(file, '"weight_map"', 'is missing: not a safetensors index')
  }
  return new Map(Object.entries(index.weight_map as Record<string, unknown>).map(([k, v]) => [k, String(v)]))
}
