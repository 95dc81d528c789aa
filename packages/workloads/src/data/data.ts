/**
 * Loads the recorded-routing data shipped in the package's `data/` folder (derived from
 * shared/data/routing by scripts/build-data.mjs; see README "Data and licence"). Loaded
 * tables are cached for the life of the process (they are immutable and at most a few MB).
 */
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gunzipSync } from 'node:zlib'
import { ErrorCodes, MoeError } from '@moe-route/core'

/** Per-expert counts of one model (expert-counts.json, compact). */
export interface ExpertCountsModel {
  readonly experts: number
  readonly topK: number
  /** Recorded layer numbers, e.g. [0, 7, 15]. */
  readonly layers: readonly number[]
  /** domain → `topk[layerIndex][expert]` pair counts and `top1[layerIndex][expert]` first-choice counts. */
  readonly domains: Readonly<Record<string, { readonly topk: number[][]; readonly top1?: number[][] }>>
}

/** LLaMA-MoE co-activation matrices (`matrices[variant][layer][i][j]`). */
export interface CoactivationData {
  readonly experts: number
  readonly topK: number
  readonly matrices: Readonly<Record<string, number[][][]>>
}

/** Per-token-id expert counts of Mixtral at one layer: `counts[index*8 + e]` for `ids[index]`. */
export interface TokenExpertTable {
  readonly ids: Uint16Array
  readonly counts: Uint32Array
}

let dataDirCache: string | undefined
const cache = new Map<string, unknown>()

/** The package's data folder (found next to src/ or dist/). */
export function dataDir(): string {
  if (dataDirCache) return dataDirCache
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 4; i++) {
    if (existsSync(join(dir, 'data', 'expert-counts.json'))) return (dataDirCache = join(dir, 'data'))
    dir = dirname(dir)
  }
  throw new MoeError(ErrorCodes.FILE_NOT_FOUND, `@moe-route/workloads: shipped data folder not found above ${fileURLToPath(import.meta.url)}`)
}

function load<T>(name: string, parse: (bytes: Buffer) => T): T {
  const hit = cache.get(name)
  if (hit !== undefined) return hit as T
  const path = join(dataDir(), name)
  let bytes: Buffer
  try {
    bytes = readFileSync(path)
  } catch (cause) {
    throw new MoeError(ErrorCodes.FILE_NOT_FOUND, `cannot read shipped data ${path}: ${(cause as Error).message}`, { file: path }, { cause })
  }
  const value = parse(bytes)
  cache.set(name, value)
  return value
}

/** Recorded per-expert counts of a model: `olmoe`, `mistral`, `olmoe-sft`, `olmoe-dpo`. */
export function expertCounts(): Readonly<Record<string, ExpertCountsModel>> {
  return load('expert-counts.json', (b) => (JSON.parse(b.toString('utf8')) as { models: Record<string, ExpertCountsModel> }).models)
}

/** LLaMA-MoE-v1-3.5B co-activation counts (`base`, `topt_1` … `topt_6`). */
export function llamaMoeCoactivation(): CoactivationData {
  return load('llama-moe-coactivation.json', (b) => JSON.parse(b.toString('utf8')) as CoactivationData)
}

/** Mistral-tokenizer ids of a domain's recorded text, in document order. */
export function mixtralTokens(domain: string): Uint16Array {
  return load(`mixtral-${domain}.tokens.gz`, (b) => {
    const raw = gunzipSync(b)
    return new Uint16Array(raw.buffer.slice(raw.byteOffset, raw.byteOffset + raw.byteLength))
  })
}

/** Per-token-id expert counts of Mixtral for a domain, one table per recorded layer (0, 7, 15). */
export function mixtralTokenExperts(domain: string): readonly TokenExpertTable[] {
  return load(`mixtral-${domain}.experts.gz`, (b) => {
    const raw = gunzipSync(b)
    const tables: TokenExpertTable[] = []
    let pos = 0
    const varint = (): number => {
      let v = 0
      let mul = 1
      for (;;) {
        const byte = raw[pos++]
        v += (byte & 0x7f) * mul
        if (byte < 0x80) return v
        mul *= 128
      }
    }
    while (pos < raw.length) {
      const n = raw.readUInt32LE(pos)
      pos += 4
      const ids = new Uint16Array(n)
      let id = 0
      for (let i = 0; i < n; i++) ids[i] = id = i === 0 ? varint() : id + varint()
      const counts = new Uint32Array(n * 8)
      for (let i = 0; i < n * 8; i++) counts[i] = varint()
      tables.push({ ids, counts })
    }
    return tables
  })
}
