/**
 * Collaboration profiles for C2R (SPEC C.2, E.14; UNITES-Lab/c2r-moe `profiling.py`):
 * per layer, ordered co-activation counts M[i][j] (tokens that chose both i and j, i ≠ j)
 * and each expert's collaborators sorted by descending count.
 *
 * The diagonal M[i][i] is never used. `profiling.py` counts i with itself and then writes −1
 * there so that an expert sorts last in its own list; the shipped `collaboration_data`
 * matrices have 0 there; a matrix taken before that overwrite holds expert i's token count.
 * All three are accepted and the stored diagonal is 0. The expert itself is left out of its
 * list (E.14), so a list has E − 1 entries.
 *
 * Ties: equal counts list the lower expert id first, which is numpy's
 * `np.argsort(-M[i], kind='stable')` with i removed. `profiling.py` calls `np.argsort`
 * with numpy's default, unstable sort, so its order among equal counts is unspecified.
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

/**
 * Each expert's collaborators by descending count, the expert itself left out, equal counts
 * by lower expert id (numpy `kind='stable'`). The diagonal is not read.
 */
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
 * A profile from recorded co-activation matrices `[layer][i][j]`, in the layout of the
 * official `profiling.py` (its `collaboration_all`, converted to nested arrays) or of the
 * shipped `collaboration_data`.
 *
 * - Off-diagonal entries must be finite numbers ≥ 0 (integers or not: only their order matters).
 * - The diagonal is ignored: −1 (`profiling.py`), 0 (`collaboration_data`) and any finite
 *   count ≥ 0 (the matrix before `profiling.py` overwrites it) are all accepted and stored as 0.
 *   Any other diagonal value (another negative number, NaN, ±Infinity, a non-number) is refused:
 *   it means the file is not such a matrix.
 * - Every layer must be E × E with the same E ≥ 1.
 *
 * Problems throw `MOE_ROUTE_ERR_SHAPE_MISMATCH` or `MOE_ROUTE_ERR_INPUT_INVALID` with the JSON
 * path of the entry (`/layer/i/j`).
 * @example
 * const profile = profileFromCounts(collaborationAll) // e.g. profiling.py's array, diagonal −1
 * const lists = profile.layers[3].lists
 */
export function profileFromCounts(matrices: readonly (readonly (readonly number[])[])[]): CollaborationProfile {
  if (!Array.isArray(matrices) || matrices.length === 0) throw new MoeError(ErrorCodes.INPUT_INVALID, 'co-activation matrices must be a non-empty array of layers [layer][i][j]', { path: '' })
  const E = Array.isArray(matrices[0]) ? matrices[0].length : 0
  if (E === 0) throw new MoeError(ErrorCodes.SHAPE_MISMATCH, 'layer 0 of the co-activation matrices must be a non-empty E × E array', { path: '/0' })
  const layers = matrices.map((m, l) => {
    if (!Array.isArray(m) || m.length !== E) throw new MoeError(ErrorCodes.SHAPE_MISMATCH, `layer ${l} must have ${E} rows, has ${Array.isArray(m) ? m.length : typeof m}`, { path: `/${l}` })
    const counts = m.map((row: unknown, i) => {
      if (!Array.isArray(row) || row.length !== E) {
        throw new MoeError(ErrorCodes.SHAPE_MISMATCH, `row ${i} of layer ${l} must have ${E} entries, has ${Array.isArray(row) ? row.length : typeof row}`, { path: `/${l}/${i}` })
      }
      return row.map((v: unknown, j) => {
        const path = `/${l}/${i}/${j}`
        if (typeof v !== 'number' || Number.isNaN(v)) throw new MoeError(ErrorCodes.INPUT_INVALID, `co-activation count at layer ${l} (${i}, ${j}) is ${JSON.stringify(v)}, not a number`, { path })
        if (i === j) {
          if (v !== -1 && !(Number.isFinite(v) && v >= 0)) {
            throw new MoeError(ErrorCodes.INPUT_INVALID, `diagonal entry at layer ${l} (${i}, ${i}) is ${v}: it is ignored, but must be −1 (profiling.py), 0, or a finite count ≥ 0`, { path })
          }
          return 0
        }
        if (!Number.isFinite(v) || v < 0) throw new MoeError(ErrorCodes.INPUT_INVALID, `co-activation count at layer ${l} (${i}, ${j}) is ${v}: it must be finite and ≥ 0`, { path })
        return v
      })
    })
    return { counts, lists: collaborativeLists(counts) }
  })
  return { format: 'moe-route.c2r-profile/v1', experts: E, layers }
}
