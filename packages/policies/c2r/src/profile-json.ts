/**
 * Profile documents: what a C2R profile or collaborator lists look like on disk (JSON), and
 * how they become collaborator lists. Three shapes are read:
 *
 * 1. a moe-route profile (`{ format: 'moe-route.c2r-profile/v1', experts, tokens?, layers }`,
 *    what `JSON.stringify(profile)` writes);
 * 2. the official co-activation matrices `[layer][i][j]` (UNITES-Lab/c2r-moe `profiling.py`'s
 *    `collaboration_all` or a `collaboration_data` file, converted from pickle to JSON);
 * 3. an official model config (`LLaMA-MoE/config.json`, `Qwen-MoE/model_topt30/config.json`)
 *    whose `collaborative_list[layer][expert]` is used as it is.
 *
 * Pickle files are never read here: unpickling can run code.
 */
import { ErrorCodes, MoeError } from '@moe-route/core'
import { profileFromCounts, type CollaborationProfile } from './profile.js'

/** The `format` tag of a moe-route profile document. */
export const PROFILE_FORMAT = 'moe-route.c2r-profile/v1'

/**
 * A profile from a parsed JSON document: a moe-route profile (its `counts` are re-read and
 * its lists recomputed, so a hand-edited `lists` field cannot disagree with the counts) or the
 * official matrices `[layer][i][j]` (see {@link profileFromCounts} for the diagonal).
 * Anything else throws `MOE_ROUTE_ERR_INPUT_INVALID`.
 * @example
 * const profile = profileFromJSON(JSON.parse(readFileSync('topt_5_collaboration.json', 'utf8')))
 */
export function profileFromJSON(doc: unknown): CollaborationProfile {
  if (Array.isArray(doc)) return profileFromCounts(doc)
  const p = doc as { format?: unknown; experts?: unknown; tokens?: unknown; layers?: unknown } | null
  if (!p || typeof p !== 'object' || p.format !== PROFILE_FORMAT || !Array.isArray(p.layers) || typeof p.experts !== 'number') {
    throw new MoeError(
      ErrorCodes.INPUT_INVALID,
      `not a C2R profile: expected format '${PROFILE_FORMAT}' with experts and layers, or co-activation matrices [layer][i][j]`,
      { path: '' },
    )
  }
  const counts = p.layers.map((l: unknown, i) => {
    const c = (l as { counts?: unknown } | null)?.counts
    if (!Array.isArray(c)) throw new MoeError(ErrorCodes.INPUT_INVALID, `profile layer ${i} has no counts matrix`, { path: `/layers/${i}/counts` })
    return c as number[][]
  })
  let profile: CollaborationProfile
  try {
    profile = profileFromCounts(counts)
  } catch (e) {
    // Point at the field of the profile document, not at the bare matrix.
    const err = e as MoeError
    const [, layer, ...rest] = String(err.details?.path ?? '').split('/')
    throw new MoeError(err.code, err.message, { ...err.details, path: `/layers/${layer ?? 0}/counts${rest.length ? `/${rest.join('/')}` : ''}` }, { cause: e })
  }
  if (profile.experts !== p.experts) {
    throw new MoeError(ErrorCodes.SHAPE_MISMATCH, `profile says experts ${p.experts} but its counts are ${profile.experts} × ${profile.experts}`, { path: '/experts' })
  }
  if (p.tokens === undefined) return profile
  if (typeof p.tokens !== 'number' || !Number.isInteger(p.tokens) || p.tokens < 0) {
    throw new MoeError(ErrorCodes.INPUT_INVALID, `profile tokens must be an integer ≥ 0, got ${JSON.stringify(p.tokens)}`, { path: '/tokens' })
  }
  return { ...profile, tokens: p.tokens }
}

/**
 * One layer's collaborator lists from a parsed JSON document (any of the three shapes in this
 * module's header). Lists from a profile or from matrices are computed by
 * {@link collaborativeLists} (self left out; ties by lower id). Lists from an official
 * config's `collaborative_list` are returned as they are, so C2R reproduces the official
 * routing exactly; they hold E entries with the expert itself last, which the `c2r` router
 * accepts for T ≤ E − 1. Each list must name distinct experts in 0..E − 1.
 * @example
 * const collaborators = collaboratorsFromJSON(JSON.parse(readFileSync('LLaMA-MoE/config.json', 'utf8')), 0)
 */
export function collaboratorsFromJSON(doc: unknown, layer: number): number[][] {
  if (doc !== null && typeof doc === 'object' && !Array.isArray(doc) && 'collaborative_list' in doc) {
    return officialLists((doc as { collaborative_list: unknown }).collaborative_list, layer)
  }
  const profile = profileFromJSON(doc)
  checkLayer(layer, profile.layers.length)
  return profile.layers[layer].lists.map((l) => [...l])
}

function checkLayer(layer: number, count: number): void {
  if (!Number.isInteger(layer) || layer < 0 || layer >= count) {
    throw new MoeError(ErrorCodes.INPUT_INVALID, `layer ${layer} is not in the document (layers 0..${count - 1})`, { path: '/layer' })
  }
}

/** An official config's `collaborative_list[layer]`, checked and copied. */
function officialLists(all: unknown, layer: number): number[][] {
  if (!Array.isArray(all)) throw new MoeError(ErrorCodes.INPUT_INVALID, 'collaborative_list must be an array [layer][expert][rank]', { path: '/collaborative_list' })
  checkLayer(layer, all.length)
  const base = `/collaborative_list/${layer}`
  const lists: unknown = all[layer]
  if (!Array.isArray(lists) || lists.length === 0) throw new MoeError(ErrorCodes.INPUT_INVALID, `${base} must be a non-empty array of lists`, { path: base })
  const E = lists.length
  return lists.map((list: unknown, e) => {
    if (!Array.isArray(list)) throw new MoeError(ErrorCodes.INPUT_INVALID, `${base}/${e} must be an array of expert ids`, { path: `${base}/${e}` })
    const seen = new Set<number>()
    return list.map((c: unknown, r) => {
      if (typeof c !== 'number' || !Number.isInteger(c) || c < 0 || c >= E || seen.has(c)) {
        throw new MoeError(ErrorCodes.INPUT_INVALID, `${base}/${e}/${r} is ${JSON.stringify(c)}: expected a distinct expert id in 0..${E - 1}`, { path: `${base}/${e}/${r}` })
      }
      seen.add(c)
      return c
    })
  })
}
