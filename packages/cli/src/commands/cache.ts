/**
 * `moe-route cache --trace t.jsonl --slots 1..E --policy lifo,fifo,lru,lfu,belady`: replays a
 * routing trace through Expert Buffering's per-device expert cache and prints the miss-rate
 * table (one column per eviction policy, Belady's MIN as the lower bound) and the static
 * memory saved against keeping every expert resident.
 */
import { writeFileSync } from 'node:fs'
import { resolve } from 'node:path'
import type { Command } from 'commander'
import { ErrorCodes, MoeError, maxOf } from '@moe-route/core'
import { batchRecords, cacheTableSvg, formatCacheTable, simulateCache, type CacheTrace, type RoutedTokenRecord } from '@moe-route/policy-expert-buffer'
import type { RoutingRecord } from '@moe-route/workloads'
import { openRecordIfAny } from '../record-source.js'
import { readJsonlTrace } from '@moe-route/workloads'
import { intOption, type CliContext } from '../context.js'
import { MAX_DEVICES, MAX_EXPERTS, MAX_LAYER, MAX_TOKENS_PER_BATCH } from '@moe-route/core'
import { createActivity, createProgress } from '../progress.js'

interface CacheFlags {
  trace: string
  slots?: string
  policy: string
  batch: string
  experts?: string
  devices?: string
  layer?: string
  bypass?: boolean
  expertBytes?: string
  json?: boolean
  plot?: string
  progress?: boolean
}

/**
 * Parses a slot list: `1..8`, `1,2,4`, `2..16:2` (step) or a mix (`1,2,4..8`), each within
 * 1 … max (the experts per device). Bad syntax is MOE_ROUTE_ERR_INPUT_INVALID; a slot count
 * above `max` is MOE_ROUTE_ERR_SIZE_LIMIT, checked before any list is built.
 */
export function parseSlots(value: string, max: number): number[] {
  const out = new Set<number>()
  const within = (n: number, part: string) => {
    if (!Number.isSafeInteger(n) || n > max) throw new MoeError(ErrorCodes.SIZE_LIMIT, `--slots: '${part}' asks for ${n} slots, more than the ${max} experts per device`, { path: '--slots' })
    return n
  }
  for (const part of value.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^(\d+)\.\.(\d+|E)(?::(\d+))?$/.exec(part)
    if (m) {
      const a = Number(m[1])
      const b = m[2] === 'E' ? max : within(Number(m[2]), part)
      const step = m[3] ? Number(m[3]) : 1
      if (step < 1 || b < a || a < 1) throw new MoeError(ErrorCodes.INPUT_INVALID, `--slots: bad range '${part}'`, { path: '--slots' })
      for (let s = a; s <= b; s += step) out.add(s)
    } else if (/^\d+$/.test(part)) {
      out.add(within(Number(part), part))
    } else {
      throw new MoeError(ErrorCodes.INPUT_INVALID, `--slots: '${part}' is not a number or a range like 1..8`, { path: '--slots' })
    }
  }
  if (out.size === 0) throw new MoeError(ErrorCodes.INPUT_INVALID, '--slots needs at least one slot count', { path: '--slots' })
  return [...out].sort((a, b) => a - b)
}

/** Registers `cache`. */
export function register(program: Command, ctx: CliContext): void {
  program
    .command('cache')
    .description('simulate the expert cache (Expert Buffering) over a routing trace: miss rate per eviction policy and slot count')
    .requiredOption('--trace <file>', 'JSONL routing trace ({"layer","token","experts":[...]} per line) or engine record (vLLM, SGLang, TensorRT-LLM, Megatron; counts-only records replay one batch per recorded step)')
    .option('--slots <list>', 'slots per device: 1..E, 1,2,4, 2..16:2 (default 1..experts per device)')
    .option('--policy <list>', 'eviction policies: lifo, fifo, lru, lfu, belady, lifo-lfu, lifo-pure, lifo-fifo, lifo-lru', 'lifo,fifo,lru,lfu,belady')
    .option('--batch <n>', 'tokens per batch', '512')
    .option('--experts <n>', 'number of experts E (default max id + 1)')
    .option('--devices <n>', 'devices under expert parallelism (contiguous placement)', '1')
    .option('--layer <n>', 'only this layer (default every layer, one cache per layer)')
    .option('--bypass', 'batches needing more experts than slots go past the cache')
    .option('--expert-bytes <n>', 'bytes per expert, to report bytes uploaded and saved')
    .option('--json', 'print the table as JSON')
    .option('--plot <out.svg>', 'write an SVG plot of miss rate against slots')
    .option('--no-progress', 'no progress display (it only shows on a terminal)')
    .action(async (flags: CacheFlags) => {
      const path = resolve(ctx.cwd, flags.trace)
      const batch = intOption(flags.batch, '--batch', 1, MAX_TOKENS_PER_BATCH) as number
      const layer = intOption(flags.layer, '--layer', 0, MAX_LAYER)
      const devices = intOption(flags.devices, '--devices', 1, MAX_DEVICES) as number
      let experts = intOption(flags.experts, '--experts', 1, MAX_EXPERTS)
      const reading = createActivity(ctx, flags.progress !== false, `reading ${flags.trace}`)
      let trace: CacheTrace
      try {
        const record = await openRecordIfAny(flags.trace, ctx.cwd, experts)
        if (record) {
          try {
            experts = record.experts
            trace = await recordCacheTrace(record, { batch, layer, name: flags.trace })
          } finally {
            await record.close()
          }
        } else {
          const records: RoutedTokenRecord[] = []
          for await (const r of readJsonlTrace(path, { ...(experts !== undefined ? { experts } : {}), ...(layer !== undefined ? { layer } : {}) })) records.push(r)
          if (records.length === 0) throw new MoeError(ErrorCodes.INPUT_EMPTY, `${flags.trace}: no routing records${layer !== undefined ? ` for layer ${layer}` : ''}`, { file: flags.trace })
          // ids were checked against --experts or, without it, the largest supported E
          let maxId = -1
          for (const r of records) maxId = Math.max(maxId, maxOf(r.experts))
          experts ??= maxId + 1
          trace = batchRecords(records, { experts, batch, name: flags.trace })
        }
      } finally {
        reading.stop()
      }
      experts = experts as number
      const perDevice = Math.ceil(experts / devices)
      const slots = parseSlots(flags.slots ?? `1..${perDevice}`, perDevice)
      const policies = flags.policy.split(',').map((s) => s.trim()).filter(Boolean)
      const expertBytes = intOption(flags.expertBytes, '--expert-bytes', 1, Number.MAX_SAFE_INTEGER)
      const progress = createProgress(ctx, flags.progress !== false, policies.length * slots.length, '(policy, slots) rows', { label: 'simulating the cache' })
      let table
      try {
        table = simulateCache(trace, {
          slots,
          policies,
          devices,
          bypassLargeBatches: flags.bypass === true,
          ...(expertBytes !== undefined ? { expertBytes } : {}),
          onProgress: (done) => progress.set(done),
        })
      } finally {
        progress.stop()
      }
      if (flags.plot) {
        const out = resolve(ctx.cwd, flags.plot)
        writeFileSync(out, cacheTableSvg(table))
        if (!flags.json) ctx.err(`wrote ${flags.plot}`)
      }
      ctx.out(flags.json ? JSON.stringify(table, null, 2) : formatCacheTable(table))
    })
}

/**
 * A cache trace from an engine record: token-level records are batched like JSONL traces
 * (`batch` tokens per layer); counts-only records give one batch per recorded step, whose
 * active set is the experts with a nonzero count (the step is the recorder's window, so --batch
 * does not apply).
 */
export async function recordCacheTrace(record: RoutingRecord, o: { batch: number; layer?: number; name: string }): Promise<CacheTrace> {
  const pick = o.layer === undefined ? record.layers.map((_, i) => i) : [record.layers.indexOf(o.layer)]
  if (pick[0] < 0) throw new MoeError(ErrorCodes.INPUT_INVALID, `${o.name} has no layer ${o.layer} (layers: ${record.layers.join(', ')})`, { path: '--layer' })
  if (record.kind === 'counts') {
    const batches: { layer: number; tokens?: number; active: number[] }[] = []
    for await (const s of record.steps()) {
      for (const i of pick) {
        const active: number[] = []
        s.counts[i].forEach((c, e) => c > 0 && active.push(e))
        batches.push(s.tokens === null ? { layer: record.layers[i], active } : { layer: record.layers[i], tokens: s.tokens, active })
      }
    }
    return { experts: record.experts, batches, name: o.name }
  }
  const k = record.topK as number
  const L = record.layers.length
  const records: RoutedTokenRecord[] = []
  for await (const c of record.chunks()) {
    for (let t = 0; t < c.tokens; t++) {
      for (const i of pick) {
        const base = (t * L + i) * k
        const experts: number[] = []
        for (let j = 0; j < k; j++) if (c.ids[base + j] >= 0) experts.push(c.ids[base + j])
        records.push({ layer: record.layers[i], token: c.start + t, experts })
      }
    }
  }
  return batchRecords(records, { experts: record.experts, batch: o.batch, name: o.name })
}
