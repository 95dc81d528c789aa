/** `moe-route route`: routing only, JSON in and out, for scripts and other languages. */
import { ErrorCodes, MAX_EXPERTS, MAX_TOKENS_PER_BATCH, MAX_TOP_K, MoeError, createMoe, type MoeConfig, type RouteResult } from '@moe-route/core'
import type { Command } from 'commander'
import { resolve } from 'node:path'
import { loadConfig } from '../config-loader.js'
import { DEFAULT_CONFIG } from '../default-config.js'
import type { CliContext } from '../context.js'
import { MAX_JSON_BYTES, parseJsonText, readJsonFile } from '@moe-route/core/node'
import type { PluginSecurity } from '@moe-route/core/node'
import { pct, table } from '../report.js'

/** The input document of `moe-route route`. */
export interface RouteInput {
  experts: number
  topK: number
  scores?: number[][]
  logits?: number[][]
  sourceDevice?: number[]
}

/** The output document of `moe-route route`. */
export interface RouteOutput {
  capacity: number | null
  tokens: { kept: [number, number][]; dropped: [number, number, string][] }[]
  load: number[]
  loadBefore: number[]
  droppedFraction: number
  gateMassKept: number
}

/** Registers `route`. */
export function register(program: Command, ctx: CliContext): void {
  program
    .command('route')
    .description('route one batch of scores or logits through the policy stack (JSON in, JSON out)')
    .requiredOption('-i, --input <file>', 'input JSON: { experts, topK, scores | logits, sourceDevice? } ("-" for stdin)')
    .option('-c, --config <file>', 'config with policies and placement (default: the embedded default\'s; the shape comes from the input, a model section must agree with it)')
    .option('--json', 'print JSON (default when stdout is not a terminal)')
    .action(async (flags: { input: string; config?: string; json?: boolean }) => {
      const input = flags.input === '-' ? parseJsonText(await readStdin(), 'route input on stdin') : readJsonFile(resolve(ctx.cwd, flags.input))
      const out = await routeDocument(input, flags.config, ctx.cwd, ctx.security)
      if (flags.json || !process.stdout.isTTY) ctx.out(JSON.stringify(out))
      else ctx.out(renderRoute(out))
    })
}

/** Validates the input document and routes it. */
export async function routeDocument(input: unknown, configPath: string | undefined, cwd: string, security: PluginSecurity = {}): Promise<RouteOutput> {
  const doc = checkInput(input)
  const T = (doc.scores ?? doc.logits)!.length
  // The shape comes from the input: a config needs no model section (hidden and intermediate
  // mean nothing for routing); one that has it must agree with the input on experts and topK.
  const { config, registry, source } = await loadConfig(configPath, cwd, (raw, file): MoeConfig => {
    const { name: _name, ...shape } = DEFAULT_CONFIG.model
    return { ...raw, model: { ...shape, experts: doc.experts, topK: doc.topK, ...file?.model } }
  }, security)
  if (config.model.experts !== doc.experts || config.model.topK !== doc.topK) {
    throw new MoeError(
      ErrorCodes.SHAPE_MISMATCH,
      `input has experts ${doc.experts}, topK ${doc.topK} but ${source} says experts ${config.model.experts}, topK ${config.model.topK}`,
      { path: '/model' },
    )
  }
  doc.sourceDevice?.forEach((d, t) => {
    if (d >= config.devices) throw new MoeError(ErrorCodes.INPUT_INVALID, `route input /sourceDevice/${t}: device ${d} is outside 0..${config.devices - 1} (${source} has ${config.devices} devices)`, { path: `/sourceDevice/${t}` })
  })
  const flat = new Float32Array(T * doc.experts)
  ;(doc.scores ?? doc.logits)!.forEach((row, t) => flat.set(row, t * doc.experts))
  // the config as loaded (resolved once, not checked again); routing needs no backend or store
  const engine = createMoe({ config, registry, source, routingOnly: true })
  const r: RouteResult = engine.route({
    id: 0,
    tokens: T,
    ...(doc.scores ? { scores: flat } : { logits: flat }),
    ...(doc.sourceDevice ? { sourceDevice: Int32Array.from(doc.sourceDevice) } : {}),
  })
  return toRouteOutput(r)
}

/** Converts an engine result into the documented output shape. */
export function toRouteOutput(r: RouteResult): RouteOutput {
  const tokens = Array.from({ length: r.tokens }, () => ({ kept: [] as [number, number][], dropped: [] as [number, number, string][] }))
  const { plan } = r
  for (let e = 0; e < plan.experts; e++) {
    for (let row = plan.offsets[e]; row < plan.offsets[e + 1]; row++) {
      const t = plan.rowToken[row]
      if (t >= 0) tokens[t].kept.push([e, plan.rowWeight[row]])
    }
  }
  for (const t of tokens) t.kept.sort((a, b) => b[1] - a[1] || a[0] - b[0])
  for (const d of r.dropped) tokens[d.token].dropped.push([d.expert, d.weight, d.reason])
  let capacity: number | null = null
  for (const p of r.telemetry.policies) if (p.capacity !== null) capacity = p.capacity
  if (plan.capacity !== null) capacity = plan.capacity
  return {
    capacity,
    tokens,
    load: [...r.telemetry.loadAfter],
    loadBefore: [...r.telemetry.loadBefore],
    droppedFraction: r.telemetry.droppedFraction,
    gateMassKept: r.telemetry.gateMassKept,
  }
}

function checkInput(input: unknown): RouteInput {
  const bad = (path: string, message: string): never => {
    throw new MoeError(ErrorCodes.INPUT_INVALID, `route input ${path}: ${message}`, { path })
  }
  if (!input || typeof input !== 'object') bad('/', 'must be a JSON object')
  const doc = input as RouteInput
  if (!Number.isInteger(doc.experts) || doc.experts < 1) bad('/experts', 'must be a positive integer')
  if (!Number.isInteger(doc.topK) || doc.topK < 1) bad('/topK', 'must be a positive integer')
  const tooBig = (path: string, value: number, max: number) => {
    if (value > max) throw new MoeError(ErrorCodes.SIZE_LIMIT, `route input ${path}: ${value} is more than the largest supported (${max})`, { path })
  }
  tooBig('/experts', doc.experts, MAX_EXPERTS)
  tooBig('/topK', doc.topK, MAX_TOP_K)
  if (doc.topK > doc.experts) throw new MoeError(ErrorCodes.TOPK_EXCEEDS_EXPERTS, `route input /topK: ${doc.topK} exceeds experts ${doc.experts}`, { path: '/topK' })
  if (!!doc.scores === !!doc.logits) bad('/', 'needs exactly one of "scores" or "logits"')
  const key = doc.scores ? 'scores' : 'logits'
  const rows = (doc.scores ?? doc.logits)!
  if (!Array.isArray(rows)) bad(`/${key}`, 'must be an array of rows')
  if (rows.length === 0) throw new MoeError(ErrorCodes.INPUT_EMPTY, `route input /${key}: has no tokens`, { path: `/${key}` })
  tooBig(`/${key}`, rows.length, MAX_TOKENS_PER_BATCH)
  rows.forEach((row, t) => {
    if (!Array.isArray(row) || row.length !== doc.experts) {
      throw new MoeError(ErrorCodes.SHAPE_MISMATCH, `route input /${key}/${t}: must have ${doc.experts} numbers, has ${Array.isArray(row) ? row.length : typeof row}`, { path: `/${key}/${t}` })
    }
    row.forEach((v, e) => {
      if (typeof v !== 'number' || !Number.isFinite(v)) {
        throw new MoeError(ErrorCodes.INPUT_NOT_FINITE, `route input /${key}/${t}/${e}: ${JSON.stringify(v)} is not a finite number`, { path: `/${key}/${t}/${e}` })
      }
      if (key === 'scores' && v < 0) {
        throw new MoeError(ErrorCodes.INPUT_INVALID, `route input /scores/${t}/${e}: ${v} is negative; scores are gate probabilities (≥ 0; give "logits" for raw router outputs)`, { path: `/scores/${t}/${e}` })
      }
    })
  })
  if (doc.sourceDevice !== undefined) {
    if (!Array.isArray(doc.sourceDevice) || doc.sourceDevice.length !== rows.length) bad('/sourceDevice', `must list one device per token (${rows.length})`)
    // checked against the config's devices once it is loaded; never wrapped through an Int32Array
    doc.sourceDevice.forEach((d, t) => (Number.isInteger(d) && d >= 0 && d <= 0x7fffffff ? undefined : bad(`/sourceDevice/${t}`, 'must be a non-negative integer (a device index)')))
  }
  return doc
}

function renderRoute(o: RouteOutput): string {
  const rows: (string | number)[][] = [['token', 'kept (expert:weight)', 'dropped (expert:reason)']]
  o.tokens.forEach((t, i) =>
    rows.push([i, t.kept.map(([e, w]) => `${e}:${w.toFixed(3)}`).join(' '), t.dropped.map(([e, , r]) => `${e}:${r}`).join(' ')]),
  )
  return `${table(rows)}\ncapacity ${o.capacity ?? 'none'}; load ${o.load.join(' ')}; dropped ${pct(o.droppedFraction)}; gate mass kept ${pct(o.gateMassKept)}`
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = []
  let bytes = 0
  for await (const c of process.stdin) {
    bytes += (c as Buffer).length
    if (bytes > MAX_JSON_BYTES) throw new MoeError(ErrorCodes.SIZE_LIMIT, `route input on stdin is larger than ${MAX_JSON_BYTES} bytes`, { path: '--input' })
    chunks.push(c as Buffer)
  }
  return Buffer.concat(chunks).toString('utf8')
}
