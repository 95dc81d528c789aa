/**
 * Profiles from matrices in the layout of the official C2R profiler. The helper below builds
 * them the way UNITES-Lab/c2r-moe `profiling.py` (commit 1a336df, `get_expert_collaboration`)
 * does, so the tests read what that script writes:
 *
 *   collaboration_all = np.zeros((n_layers, n_experts, n_experts), dtype=int)
 *   for i, experts in enumerate(top_indices):               # one token's top-k expert ids
 *       collaboration_all[layer, experts[:, None], experts] += 1
 *   collaboration_all[..., np.arange(n_experts), np.arange(n_experts)] = -1
 *   collaborative_list = np.argsort(-expert_collaboration_all, axis=2)
 */
import { isMoeError, mulberry32, softmaxTopK, type Routing } from '@moe-route/core'
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { collaborativeLists, profileCollaboration, profileFromCounts } from './profile.js'
import { collaboratorsFromJSON, profileFromJSON } from './profile-json.js'

/** profiling.py's `collaboration_all` for these per-layer routings (diagonal −1). */
function officialCollaborationAll(experts: number, layers: readonly Routing[][]): number[][][] {
  return layers.map((routings) => {
    const M = Array.from({ length: experts }, () => new Array<number>(experts).fill(0))
    for (const r of routings) {
      for (let t = 0; t < r.tokens; t++) {
        const K = Array.from(r.expertIds.subarray(t * r.slots, (t + 1) * r.slots))
        // experts[:, None], experts: every ordered pair of the token's top-k, i == j included.
        for (const i of K) for (const j of K) M[i][j] += 1
      }
    }
    for (let e = 0; e < experts; e++) M[e][e] = -1
    return M
  })
}

/** `np.argsort(-row, kind='stable')`: descending, equal values in index order. */
const stableArgsortDesc = (row: readonly number[]) => row.map((_, j) => j).sort((a, b) => row[b] - row[a])

function routings(experts: number, topK: number, seed: number, batches = 3, tokens = 64): Routing[] {
  const r = mulberry32(seed)
  return Array.from({ length: batches }, () =>
    softmaxTopK({ tokens, experts, logits: Float32Array.from({ length: tokens * experts }, () => r() * 6 - 3) }, topK, false),
  )
}

const code = (f: () => unknown): string => {
  try {
    f()
  } catch (e) {
    return isMoeError(e) ? `${e.code} ${String(e.details.path)}` : `not a MoeError: ${String(e)}`
  }
  return 'no error'
}

describe('profileFromCounts on the official layout', () => {
  for (const [E, k] of [
    [8, 2],
    [16, 4],
  ]) {
    it(`reads profiling.py's matrix (diagonal −1), E = ${E}, k = ${k}`, () => {
      const layers = [routings(E, k, 1), routings(E, k, 2)]
      const official = officialCollaborationAll(E, layers)
      expect(official[0][3][3]).toBe(-1)
      const p = profileFromCounts(official)
      const own = profileCollaboration(E, layers)
      expect(p.experts).toBe(E)
      for (let l = 0; l < 2; l++) {
        expect(p.layers[l].counts).toEqual(own.layers[l].counts)
        expect(p.layers[l].lists).toEqual(own.layers[l].lists)
        for (let i = 0; i < E; i++) {
          // The official list with kind='stable' ends with the expert itself (−(−1) sorts last);
          // without it, it is ours.
          const stable = stableArgsortDesc(official[l][i])
          expect(stable.at(-1)).toBe(i)
          expect(p.layers[l].lists[i]).toEqual(stable.slice(0, -1))
        }
      }
    })
  }

  it('ignores the diagonal whether it is −1, 0 (collaboration_data) or a token count', () => {
    const official = officialCollaborationAll(8, [routings(8, 2, 7)])
    const zero = official.map((m) => m.map((row, i) => row.map((v, j) => (i === j ? 0 : v))))
    const count = official.map((m) => m.map((row, i) => row.map((v, j) => (i === j ? 1234.5 : v))))
    const p = profileFromCounts(official)
    expect(profileFromCounts(zero)).toEqual(p)
    expect(profileFromCounts(count)).toEqual(p)
    for (let i = 0; i < 8; i++) expect(p.layers[0].counts[i][i]).toBe(0)
  })

  it('reads the shipped LLaMA-MoE matrices (diagonal 0) and the same with profiling.py’s −1', () => {
    const data = JSON.parse(readFileSync(new URL('../../../workloads/data/llama-moe-coactivation.json', import.meta.url), 'utf8'))
    const base: number[][][] = data.matrices.base
    const minusOne = base.map((m) => m.map((row, i) => row.map((v, j) => (i === j ? -1 : v))))
    expect(profileFromCounts(minusOne)).toEqual(profileFromCounts(base))
    // Layer 0, expert 0: counts [0, 2256, 0, 15105, 0, 122, 825, 149] → 3, 1, 6, 7, 5, then the
    // zero counts 2 and 4 by lower id.
    expect(profileFromCounts(base).layers[0].lists[0]).toEqual([3, 1, 6, 7, 5, 2, 4])
  })

  it('breaks equal counts by lower expert id (numpy kind=stable), as documented', () => {
    const row = [-1, 5, 7, 5, 0, 7]
    expect(collaborativeLists([row, ...Array.from({ length: 5 }, () => new Array<number>(6).fill(0))])[0]).toEqual([2, 5, 1, 3, 4])
    expect(stableArgsortDesc(row).filter((j) => j !== 0)).toEqual([2, 5, 1, 3, 4])
  })

  it('refuses corrupt matrices with a code and the path of the entry', () => {
    const good = () => officialCollaborationAll(4, [routings(4, 2, 3, 1, 16)])
    const withCell = (l: number, i: number, j: number, v: unknown) => {
      const m = good() as unknown[][][]
      m[l][i][j] = v
      return m as number[][][]
    }
    expect(code(() => profileFromCounts(withCell(0, 2, 2, -2)))).toBe('MOE_ROUTE_ERR_INPUT_INVALID /0/2/2')
    expect(code(() => profileFromCounts(withCell(0, 1, 1, Number.POSITIVE_INFINITY)))).toBe('MOE_ROUTE_ERR_INPUT_INVALID /0/1/1')
    expect(code(() => profileFromCounts(withCell(0, 1, 1, '3')))).toBe('MOE_ROUTE_ERR_INPUT_INVALID /0/1/1')
    expect(code(() => profileFromCounts(withCell(0, 0, 3, -1)))).toBe('MOE_ROUTE_ERR_INPUT_INVALID /0/0/3')
    expect(code(() => profileFromCounts(withCell(0, 0, 3, Number.NaN)))).toBe('MOE_ROUTE_ERR_INPUT_INVALID /0/0/3')
    expect(code(() => profileFromCounts(withCell(0, 0, 3, null)))).toBe('MOE_ROUTE_ERR_INPUT_INVALID /0/0/3')
    const ragged = good()
    ragged[0][2] = ragged[0][2].slice(1)
    expect(code(() => profileFromCounts(ragged))).toBe('MOE_ROUTE_ERR_SHAPE_MISMATCH /0/2')
    expect(code(() => profileFromCounts([...good(), [[0]]]))).toBe('MOE_ROUTE_ERR_SHAPE_MISMATCH /1')
    expect(code(() => profileFromCounts([]))).toBe('MOE_ROUTE_ERR_INPUT_INVALID ')
    expect(code(() => profileFromCounts([[]]))).toBe('MOE_ROUTE_ERR_SHAPE_MISMATCH /0')
    expect(code(() => profileFromCounts([{} as never]))).toBe('MOE_ROUTE_ERR_SHAPE_MISMATCH /0')
    expect(() => profileFromCounts(withCell(0, 2, 2, -2))).toThrow(/diagonal entry at layer 0 \(2, 2\) is -2: it is ignored, but must be −1/)
  })
})

describe('profile documents (JSON)', () => {
  const layers = [routings(8, 2, 11), routings(8, 2, 12)]
  const official = officialCollaborationAll(8, layers)

  it('reads the official matrices as JSON, and round-trips a moe-route profile', () => {
    const p = profileFromJSON(JSON.parse(JSON.stringify(official)))
    expect(p).toEqual(profileFromCounts(official))
    const own = profileCollaboration(8, layers)
    expect(profileFromJSON(JSON.parse(JSON.stringify(own)))).toEqual(own)
  })

  it('refuses documents that are neither, or that contradict themselves', () => {
    const own = JSON.parse(JSON.stringify(profileCollaboration(8, layers)))
    expect(code(() => profileFromJSON({ layers: [] }))).toBe('MOE_ROUTE_ERR_INPUT_INVALID ')
    expect(code(() => profileFromJSON(null))).toBe('MOE_ROUTE_ERR_INPUT_INVALID ')
    expect(code(() => profileFromJSON({ ...own, experts: 9 }))).toBe('MOE_ROUTE_ERR_SHAPE_MISMATCH /experts')
    expect(code(() => profileFromJSON({ ...own, tokens: -1 }))).toBe('MOE_ROUTE_ERR_INPUT_INVALID /tokens')
    expect(code(() => profileFromJSON({ ...own, layers: [own.layers[0], { lists: [] }] }))).toBe('MOE_ROUTE_ERR_INPUT_INVALID /layers/1/counts')
    const bad = structuredClone(own)
    bad.layers[1].counts[2][5] = -3
    expect(code(() => profileFromJSON(bad))).toBe('MOE_ROUTE_ERR_INPUT_INVALID /layers/1/counts/2/5')
  })

  it('takes collaborator lists from matrices, or verbatim from an official config’s collaborative_list', () => {
    expect(collaboratorsFromJSON(official, 1)).toEqual(profileFromCounts(official).layers[1].lists)
    // What profiling.py pickles as topt_T_collaborative_list and the configs carry: E entries, self last.
    const collaborative_list = official.map((m) => m.map((row) => stableArgsortDesc(row)))
    const config = { num_experts: 8, top_t: 5, collaborative_list }
    expect(collaboratorsFromJSON(config, 1)).toEqual(collaborative_list[1])
    expect(collaboratorsFromJSON(config, 1)[4].at(-1)).toBe(4)
    expect(code(() => collaboratorsFromJSON(config, 2))).toBe('MOE_ROUTE_ERR_INPUT_INVALID /layer')
    expect(code(() => collaboratorsFromJSON(official, -1))).toBe('MOE_ROUTE_ERR_INPUT_INVALID /layer')
    const dup = structuredClone(config)
    dup.collaborative_list[0][3][2] = dup.collaborative_list[0][3][1]
    expect(code(() => collaboratorsFromJSON(dup, 0))).toBe('MOE_ROUTE_ERR_INPUT_INVALID /collaborative_list/0/3/2')
    expect(code(() => collaboratorsFromJSON({ collaborative_list: 'x' }, 0))).toBe('MOE_ROUTE_ERR_INPUT_INVALID /collaborative_list')
  })
})
