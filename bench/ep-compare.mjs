#!/usr/bin/env node
// The simulator against real expert parallelism (issue 21): prepares the inputs of
// bench/ep_layer.py from moe-route's own commands, and compares what it measured with
// `moe-route simulate` on the same batches, placements and capacity decisions; refits the
// simulator's compute and link models on half the configurations and reports the other half.
//
//   node bench/ep-compare.mjs prepare --out DIR [--devices 1,2,4,8] [--models mixtral,olmoe]
//        [--tokens 2048,8192] [--batches 4] [--gammas none,1.0,1.5] [--placements contiguous,eplb]
//        [--seed 0] [--tiny]
//     Writes, with the real CLI (`node packages/cli/dist/bin.js`; build first):
//       trace-<m>-build.jsonl.gz / trace-<m>-measure.jsonl `moe-route workload --from <spec>`, split in
//                                                          halves: EPLB is built on the first, every
//                                                          batch is measured on the second
//       placement-<m>-contiguous-N<N>.json                `moe-route placement --algorithm contiguous --format moe-route`
//       placement-<m>-eplb-N<N>.json (N ≥ 2)              `moe-route placement --algorithm eplb --weights <build loads>
//                                                          --gpus N --replicas E+N --format eplb` (one redundant slot per GPU)
//       decisions-<m>-T<T>-g<γ>.jsonl.gz                  `moe-route route -c <capacity-drop γ config> -i - --json` per
//                                                          measured batch (scores synthesized from the trace as
//                                                          `moe-route simulate --trace` does: workloads' traceBatches)
//       manifest-N<N>.json, prepare.json                  what ep_layer.py runs on N devices, and what was prepared
//     --tiny: tiny-* shapes (same E and k, toy H and I), 2 batches of 16 and 48 tokens, for CPU runs.
//
//   node bench/ep-compare.mjs compare --inputs DIR --results ep-layer-N1.json [more …] [--out DIR]
//        [--calibration-out PREFIX] [--weight-bandwidth B/s] [--no-cli-check | --cli-check-runs K] [--no-strict]
//     For every run (configuration × variant) of every results file, simulates the same batches
//     (createSimulator, the engine of `moe-route simulate`) three ways: with a unit link (the
//     structure check: device rows, kept pairs and the busiest device's bytes must equal what the
//     layer computed and sent, else the comparison is refused); with the shipped defaults (what
//     `moe-route simulate` prints; cross-checked against the CLI itself for contiguous placements);
//     and with the models refitted here. Fit/held-out split: within each (model, N), the groups
//     (placement, T) alternate (placement index + T index even: fit), so both halves hold every
//     model, N, placement and T where there are two of each; the three γ of a group stay together so
//     speed-up ratios are held out whole. Compute: fitCalibration per shape on every busy device's
//     experts phase (exact per-slot rows), weight bandwidth fixed (the shipped calibration's for
//     that GPU, or --weight-bandwidth). Link: fitLinkModel on commMs (layer − slowest experts
//     phase: the two all-to-alls with their gather and scatter) against the busiest device's
//     bytes, overall and per device count; the isolated all_to_all_single times get a fit of
//     their own, for reference.
//     Writes DIR/ep-compare.md (tables), DIR/ep-compare.json, and PREFIX-<shape>.json: a
//     `moe-route.cost-model/v1` calibration with the fitted link (the simulator's format).
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { basename, dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { gzipSync } from 'node:zlib'
import { createTokenDrop } from '@moe-route/policy-capacity-drop'
import { placementFromPhy2log } from '@moe-route/policy-placement'
import {
  costModelFromCalibration,
  fitCalibration,
  fitLinkModel,
  H100_HF_GROUPED_MM,
  H200_HF_GROUPED_MM,
  linkModelFor,
  NVLINK4_H100,
  createSimulator,
} from '@moe-route/simulator'
import { traceBatches } from '@moe-route/workloads'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const CLI = join(ROOT, 'packages/cli/dist/bin.js')

/** The models of the issue: workload spec, ep_layer.py shape names, routing shape. */
export const MODELS = {
  mixtral: { spec: 'mixtral:c4:layer7', shape: 'mixtral-8x7b', tinyShape: 'tiny-mixtral', experts: 8, topK: 2, normalizeTopK: true },
  olmoe: { spec: 'olmoe:arxiv:layer0', shape: 'olmoe-1b-7b', tinyShape: 'tiny-olmoe', experts: 64, topK: 8, normalizeTopK: false },
}
/** ep_layer.py's shapes (H, I): the simulator needs them for tiny runs that carry no results yet. */
export const SHAPES = {
  'mixtral-8x7b': { hidden: 4096, intermediate: 14336 },
  'olmoe-1b-7b': { hidden: 2048, intermediate: 1024 },
  'tiny-mixtral': { hidden: 32, intermediate: 64 },
  'tiny-olmoe': { hidden: 32, intermediate: 48 },
}
/** A link of 1 byte per ms and no latency: an all-to-all's "ms" is then the busiest device's bytes. */
const UNIT_LINK = { name: 'unit (bytes as ms)', bandwidth: 1000, latencyMs: 0 }
const ZERO_COST = { name: 'zero', callOverheadMs: 0, expertMs: () => 0 }

/** An error of this script: its message is the report (exit code 2 for bad input, 1 for a failed check). */
export class CompareError extends Error {
  constructor(message, code = 2) {
    super(message)
    this.exitCode = code
  }
}

// --- small helpers ------------------------------------------------------------------------------

const list = (s, what) => {
  const v = String(s).split(',').map((x) => x.trim()).filter(Boolean)
  if (!v.length) throw new CompareError(`${what} needs a comma-separated list`)
  return v
}
const ints = (s, what) =>
  list(s, what).map((x) => {
    const n = Number(x)
    if (!Number.isInteger(n) || n < 1) throw new CompareError(`${what}: ${x} is not a positive integer`)
    return n
  })
const gammaOf = (g) => (g === 'none' ? null : Number(g))
const rel = (p) => relative(process.cwd(), p) || '.'
const mean = (v) => (v.length ? v.reduce((a, b) => a + b, 0) / v.length : Number.NaN)
const pct = (x) => (Number.isFinite(x) ? `${x >= 0 ? '+' : ''}${(100 * x).toFixed(1)}%` : '–')
const apct = (x) => (Number.isFinite(x) ? `${(100 * x).toFixed(1)}%` : '–')
const f3 = (x) => (Number.isFinite(x) ? x.toFixed(3) : '–')

function readJson(file, what) {
  let text
  try {
    text = readFileSync(file, 'utf8')
  } catch (e) {
    throw new CompareError(`${what} ${file}: cannot read (${e.code ?? e.message})`)
  }
  try {
    return JSON.parse(text)
  } catch (e) {
    throw new CompareError(`${what} ${file}: not JSON (${e.message})`)
  }
}

/** Runs the real CLI; returns stdout, throws with its stderr. */
export function moeRoute(args, input) {
  if (!existsSync(CLI)) throw new CompareError(`${rel(CLI)} is missing: run \`npm run build\` first`)
  const r = spawnSync(process.execPath, [CLI, ...args], { input, encoding: 'utf8', maxBuffer: 1 << 30 })
  if (r.status !== 0) throw new CompareError(`moe-route ${args.join(' ')} failed (${r.status}): ${(r.stderr || r.stdout).trim().slice(0, 2000)}`)
  return r.stdout
}

function parseFlags(argv, spec) {
  const out = { ...spec.defaults }
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]
    if (!a.startsWith('--')) throw new CompareError(`unexpected argument ${a}`)
    const key = a.slice(2)
    if (spec.bool.includes(key)) {
      out[key] = true
      continue
    }
    if (!spec.value.includes(key)) throw new CompareError(`unknown option ${a} (known: ${[...spec.value, ...spec.bool].map((k) => `--${k}`).join(' ')})`)
    if (i + 1 >= argv.length) throw new CompareError(`${a} needs a value`)
    if (spec.multi?.includes(key)) {
      out[key] = [...(out[key] ?? [])]
      while (i + 1 < argv.length && !argv[i + 1].startsWith('--')) out[key].push(argv[++i])
    } else out[key] = argv[++i]
  }
  return out
}

// --- prepare -------------------------------------------------------------------------------------

/** Writes traces, placements, route decisions and manifests (see the header). Returns prepare.json's content. */
export async function prepare(argv) {
  const o = parseFlags(argv, {
    value: ['out', 'devices', 'models', 'tokens', 'batches', 'gammas', 'placements', 'seed'],
    bool: ['tiny'],
    defaults: { devices: '1,2,4,8', models: 'mixtral,olmoe', gammas: 'none,1.0,1.5', placements: 'contiguous,eplb', seed: '0' },
  })
  if (!o.out) throw new CompareError('prepare needs --out DIR')
  const dir = resolve(o.out)
  mkdirSync(dir, { recursive: true })
  const devices = ints(o.devices, '--devices')
  const tokens = ints(o.tokens ?? (o.tiny ? '16,48' : '2048,8192'), '--tokens')
  const batches = ints(o.batches ?? (o.tiny ? '2' : '4'), '--batches')[0]
  const seed = Number(o.seed)
  const gammaNames = list(o.gammas, '--gammas')
  const gammas = gammaNames.map((g) => {
    const v = gammaOf(g)
    if (v !== null && !(v > 0)) throw new CompareError(`--gammas: ${g} is not none or a positive number`)
    return v
  })
  const gname = (g) => gammaNames[gammas.indexOf(g)]
  if (gammas[0] !== null) throw new CompareError('--gammas must start with none (the baseline of the speed-up ratios)')
  const placements = list(o.placements, '--placements')
  for (const p of placements) if (!['contiguous', 'eplb'].includes(p)) throw new CompareError(`--placements: ${p} is not contiguous or eplb`)
  const models = list(o.models, '--models').map((m) => {
    if (!MODELS[m]) throw new CompareError(`--models: ${m} is not one of ${Object.keys(MODELS).join(', ')}`)
    return m
  })
  const perHalf = batches * Math.max(...tokens)
  const info = { schema: 'moe-route/ep-prepare@1', tiny: !!o.tiny, devices, tokens, batches, seed, gammas, gammaNames, placements, eplbReplicas: 'experts + devices', models: {} }
  for (const m of models) {
    const M = MODELS[m]
    const shape = o.tiny ? M.tinyShape : M.shape
    for (const N of devices) if (M.experts % N !== 0) throw new CompareError(`${m}: ${M.experts} experts do not divide over ${N} devices`)
    const all = join(dir, `trace-${m}-all.jsonl`)
    moeRoute(['workload', '--from', M.spec, '--tokens', String(2 * perHalf), '--seed', String(seed), '--out', all])
    const lines = readFileSync(all, 'utf8').split('\n').filter(Boolean)
    rmSync(all)
    const build = `trace-${m}-build.jsonl`
    const measure = `trace-${m}-measure.jsonl`
    writeFileSync(join(dir, build), lines.slice(0, perHalf).join('\n') + '\n')
    writeFileSync(join(dir, measure), lines.slice(perHalf).join('\n') + '\n')
    const layer = JSON.parse(lines[0]).layer
    // EPLB's input: pairs per expert over the build half
    const load = new Array(M.experts).fill(0)
    for (const l of lines.slice(0, perHalf)) for (const e of JSON.parse(l).experts) load[e]++
    const weights = `eplb-weights-${m}.json`
    writeFileSync(join(dir, weights), JSON.stringify([load]))
    const files = { placements: {}, decisions: {} }
    for (const N of devices) {
      for (const p of placements) {
        if (p === 'eplb' && N === 1) continue // one device: every placement is the same
        const file = `placement-${m}-${p}-N${N}.json`
        if (p === 'contiguous') {
          moeRoute(['placement', '--algorithm', 'contiguous', '--trace', join(dir, build), '--experts', String(M.experts), '--top-k', String(M.topK),
            '--devices', String(N), '--tokens', String(Math.max(1, Math.min(1024, Math.floor(perHalf / 2)))), '--batches', '2', '--format', 'moe-route', '--out', join(dir, file)])
        } else {
          moeRoute(['placement', '--algorithm', 'eplb', '--weights', join(dir, weights), '--gpus', String(N), '--replicas', String(M.experts + N),
            '--format', 'eplb', '--out', join(dir, file)])
        }
        files.placements[`${p}/N${N}`] = file
      }
    }
    // the build half has served (EPLB loads, placements): keep it compressed, as a record
    writeFileSync(join(dir, `${build}.gz`), gzipSync(readFileSync(join(dir, build))))
    rmSync(join(dir, build))
    const { hidden, intermediate } = SHAPES[shape]
    for (const g of gammas.filter((x) => x !== null)) {
      const cfg = `route-${m}-g${gname(g)}.json`
      writeFileSync(join(dir, cfg), JSON.stringify({
        model: { experts: M.experts, topK: M.topK, hidden, intermediate, normalizeTopK: M.normalizeTopK },
        policies: [{ use: 'capacity-drop', options: { capacityFactor: g } }],
      }, null, 2))
      for (const T of tokens) {
        const out = []
        for await (const b of measuredBatches(join(dir, measure), M, T, batches, seed)) {
          const scores = []
          for (let t = 0; t < b.tokens; t++) scores.push(Array.from(b.scores.subarray(t * M.experts, (t + 1) * M.experts)))
          out.push(moeRoute(['route', '-c', join(dir, cfg), '-i', '-', '--json'], JSON.stringify({ experts: M.experts, topK: M.topK, scores })).trim())
        }
        const file = `decisions-${m}-T${T}-g${gname(g)}.jsonl.gz`
        writeFileSync(join(dir, file), gzipSync(out.join('\n') + '\n'))
        files.decisions[`T${T}/g${g}`] = file
      }
    }
    info.models[m] = { ...M, shape, layer, traceBuild: `${build}.gz`, traceMeasure: measure, eplbWeights: weights, ...files }
  }
  for (const N of devices) {
    const configs = []
    for (const m of models) {
      const mi = info.models[m]
      for (const p of placements) {
        const placement = mi.placements[`${p}/N${N}`]
        if (!placement) continue
        for (const T of tokens) {
          configs.push({
            name: `${mi.shape}/${p}/T${T}`, model: m, shape: mi.shape, trace: mi.traceMeasure, layer: mi.layer, placement, placementName: p,
            tokensPerBatch: T, batches,
            variants: gammas.map((g) => (g === null ? { name: 'none', decisions: null, capacityFactor: null } : { name: `γ${gname(g)}`, decisions: mi.decisions[`T${T}/g${g}`], capacityFactor: g })),
          })
        }
      }
    }
    writeFileSync(join(dir, `manifest-N${N}.json`), JSON.stringify({ schema: 'moe-route/ep-manifest@1', devices: N, configs }, null, 1))
  }
  writeFileSync(join(dir, 'prepare.json'), JSON.stringify(info, null, 1))
  return info
}

/** The measured batches of a model's trace, as `moe-route simulate --trace` builds them. */
function measuredBatches(file, M, T, batches, seed) {
  return traceBatches(file, { experts: M.experts, topK: M.topK, tokensPerBatch: T, batches, seed })
}

// --- compare -------------------------------------------------------------------------------------

/** Model key of a run (its shape name is a model's shape or tiny shape). */
function modelOf(info, run) {
  const m = Object.keys(info.models).find((k) => info.models[k].shape === run.shape.name)
  if (!m) throw new CompareError(`run ${run.config}: shape ${run.shape.name} was not prepared in this inputs folder (${Object.values(info.models).map((x) => x.shape).join(', ')})`)
  return m
}

/** Simulates the batches of one run; one record per batch. */
function simulateRun(ctx, run, cost, link) {
  const { model, placement, gamma, dedupe, activationBytes, batches } = ctx
  const sim = createSimulator({
    model, placement, cost, link, dedupe, activationBytes, seed: 0, keepBatches: true,
    policies: gamma === null ? [] : [createTokenDrop({ capacityFactor: gamma })],
  })
  return batches.map((b, i) => sim.step(b, i))
}

/** The group key and split of every run: fit or held-out. */
export function assignSplit(rows) {
  const byMN = new Map()
  for (const r of rows) {
    const k = `${r.model}|${r.devices}`
    if (!byMN.has(k)) byMN.set(k, { placements: new Set(), tokens: new Set() })
    byMN.get(k).placements.add(r.placement)
    byMN.get(k).tokens.add(r.tokens)
  }
  for (const r of rows) {
    const g = byMN.get(`${r.model}|${r.devices}`)
    const pi = [...g.placements].sort().indexOf(r.placement)
    const ti = [...g.tokens].sort((a, b) => a - b).indexOf(r.tokens)
    r.split = (pi + ti) % 2 === 0 ? 'fit' : 'held-out'
  }
  return rows
}

function gpuTag(device) {
  return /H100/.test(device) ? 'h100' : /H200/.test(device) ? 'h200' : /^cpu$/.test(device) ? 'cpu' : device.toLowerCase().replace(/[^a-z0-9]+/g, '-')
}

/** Compares measured runs with the simulator (see the header); returns the report document. */
export async function compare(argv) {
  const o = parseFlags(argv, {
    value: ['inputs', 'results', 'out', 'calibration-out', 'weight-bandwidth', 'cli-check-runs'],
    bool: ['no-cli-check', 'no-strict'],
    multi: ['results'],
    defaults: {},
  })
  if (!o.inputs || !o.results?.length) throw new CompareError('compare needs --inputs DIR and --results FILE …')
  const inputs = resolve(o.inputs)
  const info = readJson(join(inputs, 'prepare.json'), 'prepare record')
  if (info.schema !== 'moe-route/ep-prepare@1') throw new CompareError(`${rel(join(inputs, 'prepare.json'))} is not written by \`ep-compare.mjs prepare\``)
  const outDir = resolve(o.out ?? dirname(resolve(o.results[0])))
  mkdirSync(outDir, { recursive: true })
  const docs = o.results.map((f) => {
    const d = readJson(resolve(f), 'results')
    if (d.schema !== 'moe-route/ep-layer@1') throw new CompareError(`${f}: not an ep_layer.py result (schema moe-route/ep-layer@1)`)
    return { file: f, doc: d }
  })
  const devicesSeen = new Set(docs.map((d) => d.doc.meta.device))
  if (devicesSeen.size > 1) throw new CompareError(`the results come from different devices (${[...devicesSeen].join(', ')}): compare one machine type at a time`)
  const device = [...devicesSeen][0]
  const tag = gpuTag(device)

  // 1. every run: measured numbers, the structure check and the shipped simulation
  const rows = []
  const mismatches = []
  const batchCache = new Map()
  for (const { file, doc } of docs) {
    const N = doc.meta.devices
    for (const run of doc.runs) {
      if (!run.batches?.length) continue
      const m = modelOf(info, run)
      const mi = info.models[m]
      const T = run.tokensPerBatch
      const key = `${m}|${T}|${run.batches.length}`
      if (!batchCache.has(key)) {
        const bs = []
        for await (const b of measuredBatches(join(inputs, mi.traceMeasure), mi, T, run.batches.length, info.seed)) bs.push(b)
        batchCache.set(key, bs)
      }
      const model = { experts: run.shape.experts, topK: run.shape.topK, hidden: run.shape.hidden, intermediate: run.shape.intermediate, normalizeTopK: mi.normalizeTopK }
      const ctx = {
        model,
        placement: placementFromPhy2log(run.placement.phy2log, N, run.shape.experts, run.placement.name),
        gamma: run.capacityFactor ?? null,
        dedupe: doc.meta.dispatch === 'dedupe',
        activationBytes: doc.meta.activationBytes,
        batches: batchCache.get(key),
      }
      const probe = simulateRun(ctx, run, ZERO_COST, UNIT_LINK)
      run.batches.forEach((b, i) => {
        const s = probe[i]
        const worst = Math.max(...b.dispatchBytes.sent.map((x, d) => Math.max(x, b.dispatchBytes.recv[d])))
        const where = `${basename(file)} ${run.config} ${run.variant} batch ${b.batch}`
        if (JSON.stringify(s.deviceRows) !== JSON.stringify(b.deviceRows)) mismatches.push(`${where}: device rows ${JSON.stringify(b.deviceRows)} measured, ${JSON.stringify(s.deviceRows)} simulated`)
        if (s.pairsAfter !== b.pairsKept) mismatches.push(`${where}: ${b.pairsKept} pairs computed, the simulator's capacity-drop keeps ${s.pairsAfter}`)
        if (Math.abs(s.dispatchMs - worst) > 1e-6 * Math.max(1, worst)) mismatches.push(`${where}: busiest device moved ${worst} bytes, the simulator counts ${s.dispatchMs}`)
      })
      const shipped = simulateRun(ctx, run, undefined, undefined)
      rows.push({
        file: basename(file), run, ctx, model: m, shape: run.shape.name, devices: N, placement: run.placement.name, tokens: T, gamma: ctx.gamma,
        measured: {
          layerMs: mean(run.batches.map((b) => b.layerMs)),
          commMs: mean(run.batches.map((b) => b.commMs)),
          expertsMaxMs: mean(run.batches.map((b) => median(b.expertsMaxMsRepeats))),
          droppedFraction: run.summary?.droppedFraction ?? 0,
        },
        shipped: { layerMs: mean(shipped.map((s) => s.latencyMs)), commMs: mean(shipped.map((s) => s.dispatchMs + s.combineMs)) },
        worstBytes: probe.map((s) => s.dispatchMs),
      })
    }
  }
  if (!rows.length) throw new CompareError('no run with batches in the results')
  if (mismatches.length && !o['no-strict']) {
    throw new CompareError(`the simulator and the layer disagree on what was computed or sent (${mismatches.length}): the comparison would be meaningless.\n  ${mismatches.slice(0, 20).join('\n  ')}`, 1)
  }
  assignSplit(rows)

  // 2. fits on the fit half
  const fitRows = rows.filter((r) => r.split === 'fit')
  const weightBandwidth = o['weight-bandwidth'] ? Number(o['weight-bandwidth']) : tag === 'h100' ? H100_HF_GROUPED_MM.weightBandwidth : tag === 'h200' ? H200_HF_GROUPED_MM.weightBandwidth : null
  if (!(weightBandwidth > 0)) throw new CompareError(`no shipped weight bandwidth for '${device}': pass --weight-bandwidth (bytes/s)`)
  const first = docs[0].doc
  const dates = [...new Set(docs.map((d) => (d.doc.date ?? '').slice(0, 10)))].join(', ')
  const linkPoints = []
  const isoPoints = []
  for (const r of fitRows.filter((x) => x.devices >= 2)) {
    r.run.batches.forEach((b, i) => {
      const label = `${r.run.config} ${r.run.variant} b${b.batch}`
      linkPoints.push({ devices: r.devices, calls: 2, bytes: 2 * r.worstBytes[i], ms: b.commMs, label })
      if (b.isolated) {
        isoPoints.push({ devices: r.devices, calls: 1, bytes: r.worstBytes[i], ms: b.isolated.dispatchMaxMs, label: `${label} dispatch` })
        isoPoints.push({ devices: r.devices, calls: 1, bytes: r.worstBytes[i], ms: b.isolated.combineMaxMs, label: `${label} combine` })
      }
    })
  }
  const positive = (pts) => pts.filter((p) => p.ms > 0)
  const comm = first.meta.backend === 'nccl' ? `NCCL ${first.meta.nccl ?? ''}`.trim() : first.meta.backend
  const clock = first.meta.backend === 'nccl' ? 'CUDA events' : 'perf_counter'
  const linkName = `${comm} all_to_all_single on ${device} (torch ${first.meta.torch}), ${first.meta.dispatch} dispatch`
  const link = positive(linkPoints).length
    ? fitLinkModel({
        name: linkName,
        provenance: `MEASURED by moe-route's bench/ep_layer.py on ${dates}: per batch, layer time minus the slowest device's experts phase (two all_to_all_single with the gather before and the scatter-add after) against the busiest device's bytes of both; fitted by bench/ep-compare.mjs on the fit half of the configurations.`,
        points: positive(linkPoints),
        perDevices: true,
      })
    : null
  const isolatedLink = positive(isoPoints).length ? fitLinkModel({ name: `${linkName}, isolated`, points: positive(isoPoints), perDevices: true }) : null
  const calibrations = {}
  for (const shape of [...new Set(rows.map((r) => r.shape))]) {
    const pts = []
    for (const r of fitRows.filter((x) => x.shape === shape)) {
      for (const b of r.run.batches) {
        b.slotRows.forEach((slots, d) => {
          const rowsOnDevice = slots.reduce((a, x) => a + x, 0)
          if (rowsOnDevice === 0) return
          pts.push({ tokens: rowsOnDevice / r.run.shape.topK, activeExperts: slots.filter((x) => x > 0).length, expertRows: slots, ms: b.perDevice[d].expertsMs })
        })
      }
    }
    if (!pts.length) continue
    const s = rows.find((r) => r.shape === shape).run.shape
    calibrations[shape] = fitCalibration({
      device: `${device}, bench/ep_layer.py experts phase (${first.meta.expertsImplNote}), torch ${first.meta.torch} ${first.meta.dtype}; link: ${link ? link.name : 'not measured (one device)'}`,
      provenance: `MEASURED by moe-route's bench/ep_layer.py on ${dates} (${docs.map((d) => basename(d.file)).join(', ')}): ${s.name} shape, every busy device's experts phase per batch (${clock}, median of ${first.meta.repeats}) with its exact rows per expert slot; weight bandwidth ${(weightBandwidth / 1e12).toFixed(2)} TB/s fixed, flops and callOverheadMs fitted by bench/ep-compare.mjs on the fit half of the configurations (the other half is held out).`,
      shape: { hidden: s.hidden, intermediate: s.intermediate, topK: s.topK },
      bytesPerWeight: first.meta.activationBytes,
      weightBandwidth,
      points: pts,
      ...(link ? { link } : {}),
    })
  }

  // 3. calibrated simulation of every run
  for (const r of rows) {
    const cal = calibrations[r.shape]
    const cost = cal ? costModelFromCalibration(cal) : undefined
    const l = link ? linkModelFor(link, r.devices) : NVLINK4_H100
    const sim = simulateRun(r.ctx, r.run, cost, l)
    r.calibrated = cal ? { layerMs: mean(sim.map((s) => s.latencyMs)), commMs: mean(sim.map((s) => s.dispatchMs + s.combineMs)) } : null
    r.errShipped = r.shipped.layerMs / r.measured.layerMs - 1
    r.errCalibrated = r.calibrated ? r.calibrated.layerMs / r.measured.layerMs - 1 : Number.NaN
  }

  // 4. speed-up ratios: γ against none in the same group; N against N = 1
  const speedups = []
  for (const r of rows.filter((x) => x.gamma !== null)) {
    const base = rows.find((x) => x.model === r.model && x.devices === r.devices && x.placement === r.placement && x.tokens === r.tokens && x.gamma === null)
    if (!base) continue
    const meas = base.measured.layerMs / r.measured.layerMs
    const shp = base.shipped.layerMs / r.shipped.layerMs
    const cal = r.calibrated && base.calibrated ? base.calibrated.layerMs / r.calibrated.layerMs : Number.NaN
    speedups.push({ kind: 'capacity', model: r.model, shape: r.shape, devices: r.devices, placement: r.placement, tokens: r.tokens, gamma: r.gamma, split: r.split, measured: meas, shipped: shp, calibrated: cal, errShipped: shp / meas - 1, errCalibrated: cal / meas - 1 })
  }
  for (const r of rows.filter((x) => x.devices > 1 && x.placement === 'contiguous')) {
    const one = rows.find((x) => x.model === r.model && x.devices === 1 && x.tokens === r.tokens && x.gamma === r.gamma)
    if (!one) continue
    const meas = one.measured.layerMs / r.measured.layerMs
    const shp = one.shipped.layerMs / r.shipped.layerMs
    const cal = r.calibrated && one.calibrated ? one.calibrated.layerMs / r.calibrated.layerMs : Number.NaN
    speedups.push({ kind: 'devices', model: r.model, shape: r.shape, devices: r.devices, placement: r.placement, tokens: r.tokens, gamma: r.gamma, split: r.split, measured: meas, shipped: shp, calibrated: cal, errShipped: shp / meas - 1, errCalibrated: cal / meas - 1 })
  }

  // 5. the CLI cross-check: `moe-route simulate` itself on the contiguous runs
  const cli = []
  const cliOk = !o['no-cli-check'] && first.meta.dispatch === 'dedupe' && [1, 2, 4].includes(first.meta.activationBytes)
  if (cliOk) {
    const tmp = mkdtempSync(join(tmpdir(), 'ep-compare-'))
    try {
      const limit = o['cli-check-runs'] === undefined ? Infinity : Number(o['cli-check-runs'])
      for (const r of rows.filter((x) => x.placement === 'contiguous').slice(0, limit)) {
        const mi = info.models[r.model]
        const cfg = join(tmp, 'simulate.json')
        writeFileSync(cfg, JSON.stringify({
          model: r.ctx.model, devices: r.devices, activationBytes: r.ctx.activationBytes, seed: 0,
          placement: { use: 'contiguous' },
          policies: r.gamma === null ? [] : [{ use: 'capacity-drop', options: { capacityFactor: r.gamma } }],
          workload: { source: join(inputs, mi.traceMeasure), tokensPerBatch: r.tokens, batches: r.run.batches.length, seed: info.seed },
        }))
        const got = JSON.parse(moeRoute(['simulate', '-c', cfg, '--json'])).summary.latencyMs.mean
        const ok = Math.abs(got - r.shipped.layerMs) <= 1e-9 * Math.max(1, got)
        cli.push({ config: r.run.config, variant: r.run.variant, devices: r.devices, cliMs: got, libraryMs: r.shipped.layerMs, ok })
        if (!ok) mismatches.push(`moe-route simulate gives ${got} ms for ${r.run.config} ${r.run.variant} on ${r.devices}, the library path ${r.shipped.layerMs}`)
      }
    } finally {
      rmSync(tmp, { recursive: true, force: true })
    }
    if (cli.some((c) => !c.ok) && !o['no-strict']) throw new CompareError(`moe-route simulate and this script's simulation differ:\n  ${mismatches.join('\n  ')}`, 1)
  }

  // 6. report
  const held = rows.filter((r) => r.split === 'held-out')
  const heldSp = speedups.filter((s) => s.split === 'held-out' && s.kind === 'capacity')
  const abs = (v) => v.filter(Number.isFinite).map(Math.abs)
  const stat = (v) => ({ n: abs(v).length, meanAbs: mean(abs(v)), maxAbs: abs(v).length ? Math.max(...abs(v)) : Number.NaN })
  const summary = {
    device,
    devices: [...new Set(rows.map((r) => r.devices))].sort((a, b) => a - b),
    runs: rows.length,
    heldOut: {
      layerShipped: stat(held.map((r) => r.errShipped)),
      layerCalibrated: stat(held.map((r) => r.errCalibrated)),
      layerWithin15: held.filter((r) => Math.abs(r.errCalibrated) <= 0.15).length,
      speedupShipped: stat(heldSp.map((s) => s.errShipped)),
      speedupCalibrated: stat(heldSp.map((s) => s.errCalibrated)),
      speedupWithin10: heldSp.filter((s) => Math.abs(s.errCalibrated) <= 0.1).length,
      speedups: heldSp.length,
    },
    fit: {
      layerCalibrated: stat(fitRows.map((r) => r.errCalibrated)),
    },
    mismatches,
    cliCheck: cliOk ? { runs: cli.length, agree: cli.filter((c) => c.ok).length } : null,
  }
  const notes = []
  if (first.meta.backend !== 'nccl') notes.push(`a ${first.meta.backend} run on ${device}: it tests the plumbing (inputs, layer, simulation, fits), it measures no GPU.`)
  for (const [shape, c] of Object.entries(calibrations)) {
    if (c.flops <= 1.0001e11 || c.flops >= 0.9999e16) notes.push(`${shape}: the compute rate sits at the fit's bound (${c.flops.toExponential(2)} FLOP/s): these points do not constrain it (overhead-bound calls).`)
  }
  for (const [what, l] of [['link', link], ['isolated link', isolatedLink]]) {
    if (!l) continue
    for (const f of [l, ...(l.perDevices ?? [])]) {
      if (f.bandwidth <= 1.0001e9 || f.bandwidth >= 0.9999e13) notes.push(`${what}${f.devices ? ` (N = ${f.devices})` : ''}: the bandwidth sits at the fit's bound (${(f.bandwidth / 1e9).toFixed(0)} GB/s): the times do not grow with the bytes here.`)
    }
  }
  const report = {
    schema: 'moe-route/ep-compare@1',
    notes,
    date: new Date().toISOString(),
    inputs: rel(inputs),
    results: docs.map((d) => rel(resolve(d.file))),
    meta: first.meta,
    summary,
    calibrations: Object.fromEntries(Object.entries(calibrations).map(([k, c]) => [k, { flops: c.flops, callOverheadMs: c.callOverheadMs, weightBandwidth: c.weightBandwidth }])),
    link: link ? { bandwidth: link.bandwidth, latencyMs: link.latencyMs, perDevices: link.perDevices ?? [] } : null,
    isolatedLink: isolatedLink ? { bandwidth: isolatedLink.bandwidth, latencyMs: isolatedLink.latencyMs, perDevices: isolatedLink.perDevices ?? [] } : null,
    rows: rows.map((r) => ({
      model: r.model, shape: r.shape, devices: r.devices, placement: r.placement, tokens: r.tokens, gamma: r.gamma, split: r.split, file: r.file,
      config: r.run.config, variant: r.run.variant, measured: r.measured, shipped: r.shipped, calibrated: r.calibrated, errShipped: r.errShipped, errCalibrated: r.errCalibrated,
    })),
    speedups,
    cliCheck: cli,
  }
  const md = renderMarkdown(report)
  writeFileSync(join(outDir, 'ep-compare.json'), JSON.stringify(report, null, 1))
  writeFileSync(join(outDir, 'ep-compare.md'), md)
  const prefix = o['calibration-out'] ? resolve(o['calibration-out']) : join(outDir, `ep-calibration-${tag}`)
  const written = []
  for (const [shape, cal] of Object.entries(calibrations)) {
    const f = `${prefix}-${shape}.json`
    mkdirSync(dirname(f), { recursive: true })
    writeFileSync(f, JSON.stringify(cal, null, 2) + '\n')
    written.push(rel(f))
  }
  report.calibrationFiles = written.map((f) => basename(f))
  writeFileSync(join(outDir, 'ep-compare.json'), JSON.stringify(report, null, 1))
  return { report, md, files: [rel(join(outDir, 'ep-compare.md')), rel(join(outDir, 'ep-compare.json')), ...written] }
}

function median(v) {
  const s = [...v].sort((a, b) => a - b)
  const n = s.length
  return n === 0 ? Number.NaN : n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2
}

/** The tables of a compare report. */
export function renderMarkdown(r) {
  const s = r.summary
  const lines = []
  lines.push(`# The simulator against real expert parallelism (${r.meta.device}, N = ${s.devices.join(', ')})`, '')
  lines.push(`Measured by bench/ep_layer.py (${r.meta.backend}, torch ${r.meta.torch}${r.meta.nccl ? `, NCCL ${r.meta.nccl}` : ''}, ${r.meta.dtype}, ${r.meta.dispatch} dispatch, experts: ${r.meta.expertsImplNote}); results ${r.results.join(', ')}; inputs ${r.inputs}.`)
  lines.push(`Layer ms per batch: mean over the batches of each run of the median (over ${r.meta.repeats} calls) of the slowest device's dispatch + experts + combine. Simulated: the same batches, placement and capacity decisions in the simulator — *shipped* = \`moe-route simulate\`'s defaults (H100 transformers grouped_mm cost model, NVLink 4 nominal link)${s.cliCheck ? `, checked against the CLI on ${s.cliCheck.runs} contiguous runs (${s.cliCheck.agree} agree)` : ''}; *calibrated* = compute and link refitted here on the *fit* half.`, '')
  const cal = Object.entries(r.calibrations).map(([k, c]) => `${k}: ${(c.flops / 1e12).toFixed(1)} TFLOP/s, ${c.callOverheadMs.toFixed(3)} ms per device per call (weights ${(c.weightBandwidth / 1e12).toFixed(2)} TB/s fixed)`)
  lines.push(`**Fit (fit half):** compute — ${cal.join('; ') || 'none'}.`)
  const lk = (l) => (l ? `${(l.bandwidth / 1e9).toFixed(1)} GB/s per direction, ${(l.latencyMs * 1000).toFixed(1)} µs per all-to-all${l.perDevices?.length ? ` (per N: ${l.perDevices.map((p) => `N=${p.devices} ${(p.bandwidth / 1e9).toFixed(1)} GB/s, ${(p.latencyMs * 1000).toFixed(1)} µs`).join('; ')})` : ''}` : 'not fitted (no run on several devices)')
  lines.push(`Link (layer − slowest experts, i.e. both all-to-alls with their gather and scatter-add) — ${lk(r.link)}. all_to_all_single alone (${r.meta.backend}) — ${lk(r.isolatedLink)}.`, '')
  const h = s.heldOut
  lines.push(`**Held out:** layer time, calibrated: mean |error| ${apct(h.layerCalibrated.meanAbs)}, max ${apct(h.layerCalibrated.maxAbs)} over ${h.layerCalibrated.n} runs (${h.layerWithin15} within 15%); shipped: mean |error| ${apct(h.layerShipped.meanAbs)}, max ${apct(h.layerShipped.maxAbs)}. Capacity speed-ups (γ vs none), calibrated: mean |error| ${apct(h.speedupCalibrated.meanAbs)}, max ${apct(h.speedupCalibrated.maxAbs)} over ${h.speedups} (${h.speedupWithin10} within 10%); shipped: mean |error| ${apct(h.speedupShipped.meanAbs)}, max ${apct(h.speedupShipped.maxAbs)}. Fit half, layer time calibrated: mean |error| ${apct(s.fit.layerCalibrated.meanAbs)}.`, '')
  for (const n of r.notes ?? []) lines.push(`*Note:* ${n}`, '')
  if (s.mismatches.length) lines.push(`**Structure mismatches (${s.mismatches.length}, --no-strict):** ${s.mismatches.slice(0, 5).join('; ')}`, '')
  lines.push('| model | N | placement | T | γ | split | dropped | measured ms | shipped ms | err | calibrated ms | err | comm ms measured / calibrated |')
  lines.push('|---|---|---|---|---|---|---|---|---|---|---|---|---|')
  const order = (a, b) => a.model.localeCompare(b.model) || a.devices - b.devices || a.placement.localeCompare(b.placement) || a.tokens - b.tokens || (a.gamma ?? 0) - (b.gamma ?? 0)
  for (const x of [...r.rows].sort(order)) {
    lines.push(`| ${x.shape} | ${x.devices} | ${x.placement} | ${x.tokens} | ${x.gamma ?? 'none'} | ${x.split} | ${(100 * x.measured.droppedFraction).toFixed(1)}% | ${f3(x.measured.layerMs)} | ${f3(x.shipped.layerMs)} | ${pct(x.errShipped)} | ${f3(x.calibrated?.layerMs)} | ${pct(x.errCalibrated)} | ${f3(x.measured.commMs)} / ${f3(x.calibrated?.commMs)} |`)
  }
  const sp = r.speedups.filter((x) => x.kind === 'capacity')
  if (sp.length) {
    lines.push('', 'Capacity speed-ups (layer time without capacity ÷ with γ; same N, placement and T):', '')
    lines.push('| model | N | placement | T | γ | split | measured | shipped | err | calibrated | err |')
    lines.push('|---|---|---|---|---|---|---|---|---|---|---|')
    for (const x of [...sp].sort(order)) lines.push(`| ${x.shape} | ${x.devices} | ${x.placement} | ${x.tokens} | ${x.gamma} | ${x.split} | ${f3(x.measured)} | ${f3(x.shipped)} | ${pct(x.errShipped)} | ${f3(x.calibrated)} | ${pct(x.errCalibrated)} |`)
  }
  const ep = r.speedups.filter((x) => x.kind === 'devices')
  if (ep.length) {
    lines.push('', 'Expert-parallel speed-ups (layer time on 1 device ÷ on N, contiguous placement, same T and γ):', '')
    lines.push('| model | N | T | γ | split | measured | shipped | err | calibrated | err |')
    lines.push('|---|---|---|---|---|---|---|---|---|---|')
    for (const x of [...ep].sort(order)) lines.push(`| ${x.shape} | ${x.devices} | ${x.tokens} | ${x.gamma ?? 'none'} | ${x.split} | ${f3(x.measured)} | ${f3(x.shipped)} | ${pct(x.errShipped)} | ${f3(x.calibrated)} | ${pct(x.errCalibrated)} |`)
  }
  return lines.join('\n') + '\n'
}

// --- command line --------------------------------------------------------------------------------

async function main(argv) {
  const [cmd, ...rest] = argv
  if (cmd === 'prepare') {
    const info = await prepare(rest)
    const out = rest[rest.indexOf('--out') + 1]
    console.log(`prepared ${Object.keys(info.models).join(', ')} for N = ${info.devices.join(', ')}, T = ${info.tokens.join(', ')}, ${info.batches} batches, γ = ${info.gammaNames.join(', ')} in ${out}`)
    for (const N of info.devices) console.log(`  N = ${N}: torchrun --standalone --nproc-per-node ${N} bench/ep_layer.py --manifest ${join(out, `manifest-N${N}.json`)} --out OUT/ep-layer-N${N}.json`)
    return 0
  }
  if (cmd === 'compare') {
    const { md, files } = await compare(rest)
    console.log(md)
    console.log(`wrote ${files.join(', ')}`)
    return 0
  }
  console.error('usage: node bench/ep-compare.mjs prepare --out DIR [options] | compare --inputs DIR --results FILE… [options] (see the header of this file)')
  return 2
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (e) => {
      console.error(`ep-compare: ${e instanceof CompareError ? e.message : e.stack ?? e}`)
      process.exit(e instanceof CompareError ? e.exitCode : 1)
    },
  )
}
