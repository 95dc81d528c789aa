/**
 * Workload spec strings: `<model>:<domain or variant>:layer<L>` or `uniform:E=<E>:k=<k>`.
 */
import { ErrorCodes, MAX_EXPERTS, MAX_TOP_K, MoeError } from '@moe-route/core'
import { expertCounts, llamaMoeCoactivation } from '../data/data.js'
import { llamaMoePairsWorkload, mixtralReplayWorkload, popularityWorkload, uniformWorkload } from './generators.js'
import type { Workload } from './workload.js'

/**
 * The workload `moe-route run` uses when none is given: Mixtral-8x7B layer 7 replaying c4
 * web text. Mixtral is the most deployed open MoE; c4 is general web text (neither the
 * skewed arxiv/github nor an instruction mix); layer 7 is a mid-network layer; and the
 * replay keeps document locality, so per-batch loads are as uneven as a real server's.
 */
export const DEFAULT_WORKLOAD = 'mixtral:c4:layer7'

const MODEL_KEYS: Record<string, string> = { mixtral: 'mistral', 'mixtral-marginal': 'mistral', olmoe: 'olmoe', 'olmoe-sft': 'olmoe-sft', 'olmoe-dpo': 'olmoe-dpo' }

/** Spec patterns, for help texts and error messages. */
export function workloadSpecPatterns(): string[] {
  const counts = expertCounts()
  const out: string[] = []
  for (const [name, key] of Object.entries(MODEL_KEYS)) {
    const m = counts[key]
    out.push(`${name}:{${Object.keys(m.domains).join(',')}}:layer{${m.layers.join(',')}}`)
  }
  const co = llamaMoeCoactivation()
  const variants = Object.keys(co.matrices)
  out.push(`llama-moe:{${variants.join(',')}}:layer{0..${co.matrices[variants[0]].length - 1}}`)
  out.push('uniform:E=<experts>:k=<topK>')
  return out
}

/** Every concrete spec backed by recorded data (uniform is parametric and not listed). */
export function listWorkloadSpecs(): string[] {
  const counts = expertCounts()
  const out: string[] = []
  for (const [name, key] of Object.entries(MODEL_KEYS)) {
    const m = counts[key]
    for (const d of Object.keys(m.domains)) for (const l of m.layers) out.push(`${name}:${d}:layer${l}`)
  }
  const co = llamaMoeCoactivation()
  for (const [v, mats] of Object.entries(co.matrices)) for (let l = 0; l < mats.length; l++) out.push(`llama-moe:${v}:layer${l}`)
  return out
}

function unknown(spec: string, why: string): MoeError {
  const patterns = workloadSpecPatterns()
  return new MoeError(ErrorCodes.INPUT_INVALID, `unknown workload spec '${spec}': ${why}. Valid specs: ${patterns.join(' | ')}`, {
    spec,
    valid: patterns,
  })
}

/**
 * Builds a workload from a spec string.
 * - `mixtral:<arxiv|c4|github>:layer<0|7|15>`: Mixtral-8x7B token replay (see mixtralReplayWorkload)
 * - `mixtral-marginal:<domain>:layer<L>`: Mixtral per-layer popularity, i.i.d. tokens
 * - `olmoe:<arxiv|c4|github|tulu>:layer<0|7|15>`, `olmoe-sft:tulu:…`, `olmoe-dpo:tulu:…`: OLMoE popularity
 * - `llama-moe:<base|topt_1..6>:layer<0..31>`: LLaMA-MoE co-activated pairs
 * - `uniform:E=<E>:k=<k>`: uniform baseline
 *
 * An unknown or malformed spec is `MOE_ROUTE_ERR_INPUT_INVALID` naming the spec and listing
 * the valid ones (`details.valid`).
 *
 * @example
 * const w = workloadFromSpec(DEFAULT_WORKLOAD)
 * for await (const batch of w.batches({ tokensPerBatch: 2048, batches: 8, seed: 1 })) engine.process(batch)
 */
export function workloadFromSpec(spec: string): Workload {
  const parts = spec.trim().split(':')
  const [model] = parts
  if (model === 'uniform') {
    const kv = new Map(parts.slice(1).map((p) => p.split('=') as [string, string]))
    const E = Number(kv.get('E'))
    const k = Number(kv.get('k'))
    if (parts.length !== 3 || !Number.isInteger(E) || !Number.isInteger(k) || E < 1 || k < 1 || k > E) {
      throw unknown(spec, 'uniform needs E=<experts>:k=<topK> with 1 ≤ k ≤ E')
    }
    if (E > MAX_EXPERTS || k > MAX_TOP_K) {
      throw new MoeError(ErrorCodes.SIZE_LIMIT, `workload spec '${spec}': E ≤ ${MAX_EXPERTS} and k ≤ ${MAX_TOP_K} are the largest supported`, { spec })
    }
    return uniformWorkload(E, k)
  }
  if (parts.length !== 3) throw unknown(spec, 'expected <model>:<domain>:layer<N>')
  const [, domain, layerText] = parts
  const lm = /^layer(\d+)$/.exec(layerText)
  if (!lm) throw unknown(spec, `'${layerText}' is not layer<N>`)
  const layer = Number(lm[1])
  try {
    if (model === 'mixtral') return mixtralReplayWorkload(domain, layer)
    if (model === 'llama-moe') return llamaMoePairsWorkload(domain, layer)
    if (model in MODEL_KEYS) return popularityWorkload(model, domain, layer)
  } catch (e) {
    throw unknown(spec, (e as Error).message)
  }
  throw unknown(spec, `unknown model '${model}'`)
}
