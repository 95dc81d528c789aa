/**
 * The generators: uniform, per-layer popularity (OLMoE, Mixtral), Mixtral token replay and
 * LLaMA-MoE co-activated pairs. Each returns a {@link Workload}; {@link workloadFromSpec}
 * builds them from spec strings.
 */
import { mixSeed, mulberry32, pcgHash } from '@moe-route/core'
import { expertCounts, llamaMoeCoactivation, mixtralTokenExperts, mixtralTokens } from '../data/data.js'
import { invalid } from '../io/errors.js'
import { drawSystematic, inclusionProbabilities, pickFirst } from './sampling.js'
import { createWorkload, exactSampler, type TokenSampler, type Workload } from './workload.js'

const normalize = (v: ArrayLike<number>): number[] => {
  let s = 0
  for (let i = 0; i < v.length; i++) s += v[i]
  return Array.from(v, (x) => x / s)
}

/** A sampler drawing k experts with inclusion probabilities `pi`, first slot biased by `first`. */
function marginalSampler(pi: Float64Array, k: number, first: Float64Array | null): TokenSampler {
  const order = new Int32Array(pi.length)
  return {
    seek() {}, // stateless: every token's draws come from its own stream position
    next(random, out, offset) {
      drawSystematic(pi, k, random, order, out, offset)
      if (first) pickFirst(first, k, random, out, offset)
    },
  }
}

/** First-choice bias top1/topk per expert (how often an expert, when chosen, is the first choice). */
function firstBias(topk: readonly number[], top1: readonly number[] | undefined): Float64Array | null {
  if (!top1) return null
  return Float64Array.from(topk, (c, e) => (c > 0 ? top1[e] / c : 0))
}

/**
 * k distinct experts uniformly at random, in O(k) draws: rejection of repeats while k ≤ E/2,
 * else a partial Fisher–Yates shuffle. Slot order is the draw order (itself uniform).
 */
function uniformSampler(experts: number, k: number): TokenSampler {
  const pool = new Int32Array(experts)
  const rejection = 2 * k <= experts
  return {
    seek() {}, // stateless
    // next() with TokenRandom inlined, for the rejection case (the common one: k ≪ E)
    fill: rejection
      ? (stream, first, count, out) => {
          const base = pcgHash(stream >>> 0)
          for (let t = 0; t < count; t++) {
            let a = pcgHash((base + Math.imul(first + t, 0x9e3779b9)) >>> 0)
            const o = t * k
            for (let j = 0; j < k; j++) {
              let e: number
              let again: boolean
              do {
                a = (a + 0x6d2b79f5) >>> 0
                let r = Math.imul(a ^ (a >>> 15), a | 1)
                r ^= r + Math.imul(r ^ (r >>> 7), r | 61)
                e = Math.floor((((r ^ (r >>> 14)) >>> 0) / 4294967296) * experts)
                again = false
                for (let i = 0; i < j; i++) if (out[o + i] === e) again = true
              } while (again)
              out[o + j] = e
            }
          }
        }
      : undefined,
    next(random, out, offset) {
      if (2 * k <= experts) {
        for (let j = 0; j < k; j++) {
          let e: number
          let again: boolean
          do {
            e = Math.floor(random() * experts)
            again = false
            for (let i = 0; i < j; i++) if (out[offset + i] === e) again = true
          } while (again)
          out[offset + j] = e
        }
        return
      }
      for (let e = 0; e < experts; e++) pool[e] = e
      for (let j = 0; j < k; j++) {
        const i = j + Math.floor(random() * (experts - j))
        const e = pool[i]
        pool[i] = pool[j]
        pool[j] = e
        out[offset + j] = e
      }
    },
  }
}

/** @internal The uniform workload's sampler (tests compare its batch fill with `next`). */
export const uniformSamplerForTests = (w: Workload, _seed: number): TokenSampler => uniformSampler(w.experts, w.topK)

/**
 * Each token picks `topK` distinct experts uniformly at random (the balanced baseline).
 * @example uniformWorkload(8, 2).batches({ tokensPerBatch: 512, batches: 10, seed: 1 })
 */
export function uniformWorkload(experts: number, topK: number, normalizeTopK = true): Workload {
  if (!Number.isInteger(experts) || experts < 1) throw invalid(`uniform workload: E must be a positive integer, got ${experts}`)
  if (!Number.isInteger(topK) || topK < 1 || topK > experts) throw invalid(`uniform workload: k must be an integer in 1..${experts}, got ${topK}`)
  return createWorkload({
    spec: `uniform:E=${experts}:k=${topK}`,
    description: `uniform routing, ${experts} experts, top-${topK}`,
    experts,
    topK,
    normalizeTopK,
    targetLoad: new Array<number>(experts).fill(1 / experts),
    sampler: exactSampler(() => uniformSampler(experts, topK)), // k distinct ids in range by construction
  })
}

/** Model keys of expert-counts.json with their spec names and conventions. */
const POPULARITY_MODELS: Record<string, { key: string; normalizeTopK: boolean; label: string }> = {
  olmoe: { key: 'olmoe', normalizeTopK: false, label: 'OLMoE-1B-7B-0924' },
  'olmoe-sft': { key: 'olmoe-sft', normalizeTopK: false, label: 'OLMoE-1B-7B-0924-SFT' },
  'olmoe-dpo': { key: 'olmoe-dpo', normalizeTopK: false, label: 'OLMoE-1B-7B-0924-DPO' },
  'mixtral-marginal': { key: 'mistral', normalizeTopK: true, label: 'Mixtral-8x7B-v0.1' },
}

function recordedLayer(model: string, domain: string, layer: number) {
  const m = expertCounts()[POPULARITY_MODELS[model].key]
  const d = m.domains[domain]
  if (!d) throw invalid(`${model}: no recorded domain "${domain}" (recorded: ${Object.keys(m.domains).join(', ')})`)
  const li = m.layers.indexOf(layer)
  if (li < 0) throw invalid(`${model}: layer ${layer} was not recorded (recorded layers: ${m.layers.join(', ')})`)
  return { m, topk: d.topk[li], top1: d.top1?.[li] }
}

/**
 * Tokens drawn i.i.d. from a recorded per-layer expert popularity (expert-counts.json): each
 * token's k experts are drawn so expert e is chosen with probability k·N_e/ΣN (systematic
 * sampling), and the first slot follows the recorded top-1 counts. No token order is recorded
 * for these models, so per-batch imbalance only reflects sampling noise around the corpus
 * marginal (a lower bound on real per-batch imbalance).
 *
 * @param model `olmoe`, `olmoe-sft`, `olmoe-dpo` or `mixtral-marginal`
 * @param domain e.g. `arxiv`, `c4`, `github`, `tulu`
 * @param layer a recorded layer: 0, 7 or 15
 */
export function popularityWorkload(model: string, domain: string, layer: number): Workload {
  const spec = POPULARITY_MODELS[model]
  if (!spec) throw invalid(`unknown popularity model "${model}" (known: ${Object.keys(POPULARITY_MODELS).join(', ')})`)
  const { m, topk, top1 } = recordedLayer(model, domain, layer)
  const pi = inclusionProbabilities(topk, m.topK)
  const first = firstBias(topk, top1)
  return createWorkload({
    spec: `${model}:${domain}:layer${layer}`,
    description: `${spec.label} layer ${layer} on ${domain}: i.i.d. draws from the recorded per-expert counts (${m.experts} experts, top-${m.topK})`,
    experts: m.experts,
    topK: m.topK,
    normalizeTopK: spec.normalizeTopK,
    targetLoad: normalize(topk),
    sampler: () => marginalSampler(pi, m.topK, first),
  })
}

/** Options of {@link mixtralReplayWorkload}. */
export interface MixtralReplayOptions {
  /**
   * Token position to start the replay at. Default: a seeded start (the run's seed picks the
   * start of a line of the text), so different seeds replay different passages.
   */
  readonly start?: number
  /** Replay these token ids instead of the shipped text (e.g. your own text tokenized with mistral-tokenizer-js). */
  readonly tokenIds?: ArrayLike<number>
}

const MIXTRAL_LAYERS = [0, 7, 15]
const NEWLINE = 13

/**
 * Mixtral-8x7B replay: walks the recorded text of a domain token by token (Mistral tokenizer
 * ids, document order, wrapping at the end) and draws each token's two experts from what that
 * token id actually received at that layer (mixtral-token-experts): expert e is chosen with
 * probability count(id, e)/occurrences(id). Ids never recorded fall back to the layer's
 * marginal. The document order keeps the topic locality that makes per-batch loads uneven.
 *
 * @param domain `arxiv`, `c4` or `github`
 * @param layer 0, 7 or 15
 */
export function mixtralReplayWorkload(domain: string, layer: number, options: MixtralReplayOptions = {}): Workload {
  const li = MIXTRAL_LAYERS.indexOf(layer)
  if (li < 0) throw invalid(`mixtral: layer ${layer} was not recorded (recorded layers: ${MIXTRAL_LAYERS.join(', ')})`)
  const { m, topk, top1 } = recordedLayer('mixtral-marginal', domain, layer)
  const table = mixtralTokenExperts(domain)[li]
  const ids = options.tokenIds ? Uint16Array.from(options.tokenIds) : mixtralTokens(domain)
  if (ids.length === 0) throw invalid('mixtral replay: no tokens to replay')
  const k = m.topK
  // π per recorded token id, indexed by a dense row through `row`
  const row = new Int32Array(65536).fill(-1)
  const pis: Float64Array[] = []
  for (let i = 0; i < table.ids.length; i++) {
    row[table.ids[i]] = i
    pis.push(inclusionProbabilities(table.counts.subarray(i * 8, i * 8 + 8), k))
  }
  const fallback = inclusionProbabilities(topk, k)
  const first = firstBias(topk, top1)
  const lineStarts: number[] = [0]
  for (let i = 0; i + 1 < ids.length; i++) if (ids[i] === NEWLINE) lineStarts.push(i + 1)
  return createWorkload({
    spec: `mixtral:${domain}:layer${layer}`,
    description: `Mixtral-8x7B-v0.1 layer ${layer}, replay of the recorded ${domain} text (${ids.length} tokens) with per-token-id expert counts`,
    experts: m.experts,
    topK: k,
    normalizeTopK: true,
    targetLoad: normalize(topk),
    sampler(seed) {
      let origin = options.start ?? lineStarts[Math.floor(mulberry32(mixSeed(seed, 0x737430))() * lineStarts.length)]
      origin = ((origin % ids.length) + ids.length) % ids.length
      let pos = origin
      const order = new Int32Array(m.experts)
      return {
        seek(token) {
          pos = (origin + (token % ids.length)) % ids.length
        },
        next(random, out, offset) {
          const r = row[ids[pos]]
          pos = pos + 1 === ids.length ? 0 : pos + 1
          drawSystematic(r >= 0 ? pis[r] : fallback, k, random, order, out, offset)
          if (first) pickFirst(first, k, random, out, offset)
        },
      }
    },
  })
}

/**
 * LLaMA-MoE-v1-3.5B pairs: each token's (first, second) expert pair is drawn from the recorded
 * co-activation counts of the layer (ordered pairs; the matrices are symmetric, so either
 * expert is first half the time). Exact joint of the top-2 sets.
 *
 * @param variant `base` or `topt_1` … `topt_6` (collaboration-constrained fine-tunes)
 * @param layer 0 … 31
 */
export function llamaMoePairsWorkload(variant: string, layer: number): Workload {
  const data = llamaMoeCoactivation()
  const mats = data.matrices[variant]
  if (!mats) throw invalid(`llama-moe: unknown variant "${variant}" (known: ${Object.keys(data.matrices).join(', ')})`)
  if (!Number.isInteger(layer) || layer < 0 || layer >= mats.length) throw invalid(`llama-moe: layer ${layer} is outside 0..${mats.length - 1}`)
  const E = data.experts
  const M = mats[layer]
  const cum = new Float64Array(E * E)
  let total = 0
  const load = new Array<number>(E).fill(0)
  for (let i = 0; i < E; i++) {
    for (let j = 0; j < E; j++) {
      const c = i === j ? 0 : M[i][j]
      total += c
      cum[i * E + j] = total
      load[i] += c
      load[j] += c
    }
  }
  return createWorkload({
    spec: `llama-moe:${variant}:layer${layer}`,
    description: `LLaMA-MoE-v1-3.5B (${variant}) layer ${layer}: expert pairs drawn from the recorded co-activation counts`,
    experts: E,
    topK: 2,
    normalizeTopK: true,
    targetLoad: normalize(load),
    sampler: () => ({
      seek() {}, // stateless
      next(random, out, offset) {
        const r = random() * total
        let lo = 0
        let hi = cum.length - 1
        while (lo < hi) {
          const mid = (lo + hi) >> 1
          if (cum[mid] > r) hi = mid
          else lo = mid + 1
        }
        out[offset] = Math.floor(lo / E)
        out[offset + 1] = lo % E
      },
    }),
  })
}
