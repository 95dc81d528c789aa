/**
 * Collaboration profiles for C2R (SPEC C.2, E.14; UNITES-Lab/c2r-moe `profiling.py`):
 * per layer, ordered co-activation counts M[i][j] (tokens that chose both i and j, i ≠ j)
 * and each expert's collaborators sorted by descending count. Unlike `profiling.py`, which
 * sets the diagonal to −1 so an expert sorts last in its own list, the expert itself is left
 * out of its list (E.14), so a list has E − 1 entries. Ties: lower expert id first.
 */
import { ErrorCodes, MoeError } from '@moe-route/core'

/** One layer's profile. */
export interface LayerCollaboration {
  /** experts × experts ordered co-activation counts, diagonal 0. */
  readonly counts: readonly (readonly number[])[]
  /** For each expert, the other experts by descending co-activation (length E − 1). */
  readonly lists: readonly (readonly number[])[]
}

/** A collaboration profile of a model: one entry per profiled layer. */
export interface CollaborationProfile {
  readonly format: 'moe-route.c2r-profile/v1'
  readonly experts: number
  /** Tokens profiled (per layer), when known. */
  readonly tokens?: number
  readonly layers: readonly LayerCollaboration[]
}

/** The minimal routing shape the profiler reads (a core Routing fits). */
export interface RoutingLike {
  readonly tokens: number
  readonly slots: number
  readonly expertIds: Int32Array
}

/** Each expert's collaborators by descending count (self excluded; ties: lower id). */
export function collaborativeLists(counts: readonly (readonly number[])[]): number[][] {
  const E = counts.length
  return counts.map((row, i) => {
    if (row.length !== E) throw new MoeError(ErrorCodes.SHAPE_MISMATCH, `co-activation row ${i} has ${row.length} entries, expected ${E}`)
    const others: number[] = []
    for (let j = 0; j < E; j++) if (j !== i) others.push(j)
    return others.sort((a, b) => row[b] - row[a] || a - b)
  })
}

/** Accumulates M[i][j] += 1 for every token that chose i and j (i ≠ j) into `counts`. */
export function accumulateCoactivation(counts: number[][], routing: RoutingLike): number {
  const E = counts.length
  let tokens = 0
  for (let t = 0; t < routing.tokens; t++) {
    const o = t * routing.slots
    let any = false
    for (let a = 0; a < routing.slots; a++) {
      const i = routing.expertIds[o + a]
      if (i < 0) continue
      if (i >= E) throw new MoeError(ErrorCodes.INPUT_INVALID, `expert id ${i} is outside 0..${E - 1}`, { record: t })
      any = true
      for (let b = 0; b < routing.slots; b++) {
        const j = routing.expertIds[o + b]
        if (j >= 0 && j !== i) counts[i][j]++
      }
    }
    if (any) tokens++
  }
  return tokens
}

/**
 * Profiles collaboration from routings, one iterable per layer (e.g. a trace's per-layer
 * routings; for one layer pass `[routings]`).
 * @example
 * const profile = profileCollaboration(64, [layer0Routings, layer1Routings])
 */
export function profileCollaboration(experts: number, layers: readonly Iterable<RoutingLike>[]): CollaborationProfile {
  let tokens = 0
  const out = layers.map((routings, l) => {
    const counts = Array.from({ length: experts }, () => new Array<number>(experts).fill(0))
    let n = 0
    for (const r of routings) n += accumulateCoactivation(counts, r)
    if (l === 0) tokens = n
    return { counts, lists: collaborativeLists(counts) }
  })
  return { format: 'moe-route.c2r-profile/v1', experts, tokens, layers: out }
}

/**
 * A profile from recorded co-activation matrices ([layer][i][j]), e.g. the c2r-moe
 * `collaboration_data` (the diagonal is ignored).
 */
export function profileFromCounts(matrices: readonly (readonly (readonly number[])[])[]): CollaborationProfile {
  if (matrices.length === 0) throw new MoeError(ErrorCodes.INPUT_INVALID, 'no layer in the co-activation matrices')
  const E = matrices[0].length
  const layers = matrices.map((m, l) => {
    if (m.length !== E) throw new MoeError(ErrorCodes.SHAPE_MISMATCH, `layer ${l} has ${m.length} rows, expected ${E}`, { path: `/${l}` })
    const counts = m.map((row, i) =>
      row.map((v, j) => {
        if (!Number.isFinite(v) || v < 0) throw new MoeError(ErrorCodes.INPUT_INVALID, `count at layer ${l} (${i}, ${j}) must be finite and ≥ 0`, { path: `/${l}/${i}/${j}` })
        return i === j ? 0 : v
      }),
    )
    return { counts, lists: collaborativeLists(counts) }
  })
  return { format: 'moe-route.c2r-profile/v1', experts: E, layers }
}

/** Checks a parsed profile document (e.g. from JSON.parse) and returns it typed. */
export function profileFromJSON(doc: unknown): CollaborationProfile {
  const p = doc as Partial<CollaborationProfile> | null
  if (!p || typeof p !== 'object' || p.format !== 'moe-route.c2r-profile/v1' || !Array.isArray(p.layers) || typeof p.experts !== 'number') {
    throw new MoeError(ErrorCodes.INPUT_INVALID, "not a C2R profile (expected format 'moe-route.c2r-profile/v1' with experts and layers)")
  }
  const profile = profileFromCounts(p.layers.map((l) => l.counts))
  return p.tokens === undefined ? profile : { ...profile, tokens: p.tokens }
}
