/**
 * The CLI's way to give the `c2r` router its collaborator lists from a file: in a config,
 * `"router": { "use": "c2r", "options": { "topT": 5, "profile": "profile.json", "layer": 0 } }`.
 * Before the config is validated, `profile` (a JSON file, relative to the config) and `layer`
 * (default 0) are replaced by `collaborators`, read with `collaboratorsFromJSON`: a moe-route
 * profile, the official co-activation matrices `[layer][i][j]` (diagonal −1 or 0), or an
 * official model config whose `collaborative_list` is used as it is. The router plugin itself
 * reads no files (it runs in browsers too).
 */
import { ErrorCodes, MoeError, isMoeError, type MoeConfig, type MoeIssue } from '@moe-route/core'
import { collaboratorsFromJSON } from '@moe-route/policy-c2r'
import { resolve } from 'node:path'
import { readJsonFile } from '@moe-route/core/node'

const OPTIONS = '/router/options'

/**
 * Returns the config with a c2r router's `profile`/`layer` options resolved into
 * `collaborators`; configs without them come back unchanged. Throws MoeError: the file's
 * own code (`MOE_ROUTE_ERR_FILE_NOT_FOUND`, `MOE_ROUTE_ERR_CONFIG_PARSE`), the profile's
 * (`MOE_ROUTE_ERR_INPUT_INVALID`, `MOE_ROUTE_ERR_SHAPE_MISMATCH`, naming the file and the
 * entry), or `MOE_ROUTE_ERR_CONFIG_INVALID` for misused options.
 */
export function resolveC2rProfile(raw: MoeConfig, baseDir: string): MoeConfig {
  const router = raw?.router
  const options = router?.options
  if (router?.use !== 'c2r' || !options || (!('profile' in options) && !('layer' in options))) return raw
  const { profile, layer = 0, ...rest } = options
  const invalid = (field: string, message: string): never => {
    throw new MoeError(ErrorCodes.CONFIG_INVALID, `${OPTIONS}/${field}: ${message}`, { path: `${OPTIONS}/${field}`, plugin: 'c2r' })
  }
  if (typeof profile !== 'string' || profile.length === 0) invalid('profile', 'must name a JSON file (with "layer", a c2r profile, co-activation matrices or an official config)')
  if ('collaborators' in rest) invalid('collaborators', 'give either "collaborators" or "profile", not both')
  if (typeof layer !== 'number' || !Number.isInteger(layer) || layer < 0) invalid('layer', `must be an integer ≥ 0, got ${JSON.stringify(layer)}`)
  const file = resolve(baseDir, profile as string)
  let collaborators: number[][]
  try {
    collaborators = collaboratorsFromJSON(readJsonFile(file), layer as number)
  } catch (e) {
    if (!isMoeError(e)) throw e
    // Point at the config field; keep the entry inside the file in the message.
    const entry = e.details.path && e.details.path !== '/layer' ? ` at ${String(e.details.path)}` : ''
    const inFile = e.details.file === undefined ? `${file}${entry}: ` : ''
    const at = e.details.path === '/layer' ? `${OPTIONS}/layer` : `${OPTIONS}/profile`
    throw new MoeError(e.code, `${at}: ${inFile}${e.message}`, { ...e.details, path: at, file, plugin: 'c2r' }, { cause: e })
  }
  return { ...raw, router: { ...router, options: { ...rest, collaborators } } }
}

/**
 * {@link resolveC2rProfile} for `validate`: a problem becomes an issue and the two options are
 * dropped, so the schema check does not report them a second time.
 */
export function resolveC2rProfileIssues(raw: MoeConfig, baseDir: string, issues: MoeIssue[]): MoeConfig {
  try {
    return resolveC2rProfile(raw, baseDir)
  } catch (e) {
    if (!isMoeError(e)) throw e
    const path = String(e.details.path ?? OPTIONS)
    // validate prints the path itself.
    issues.push({ code: e.code, path, message: e.message.startsWith(`${path}: `) ? e.message.slice(path.length + 2) : e.message, plugin: 'c2r' })
    const { profile: _p, layer: _l, ...rest } = raw.router!.options!
    return { ...raw, router: { ...raw.router!, options: rest } }
  }
}
