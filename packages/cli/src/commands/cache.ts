/**
 * `moe-route cache --trace t.jsonl --slots 1..E --policy lifo,fifo,lru,lfu,belady`: replays a
 * routing trace through Expert Buffering's per-device expert cache and prints the miss-rate
 * table (one column per eviction policy, Belady's MIN as the lower bound) and the static
 * memory saved against keeping every expert resident.
 */
import { writeFileSync } from 'node:fs'
import { resolve } from 'node:path'
import type { Command } from 'commander'
import { ErrorCodes, MoeError } from '@moe-route/core'
import { batchRecords, cacheTableSvg, formatCacheTable, simulateCache, type RoutedTokenRecord } from '@moe-route/policy-expert-buffer'
import { readJsonlTrace } from '@moe-route/workloads'
import { intOption, type CliContext } from '../context.js'

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
}

/**
 * Parses a slot list: `1..8`, `1,2,4`, `2..16:2` (step) or a mix (`1,2,4..8`), each within
 * 1 … max. Bad syntax is MOE_ROUTE_ERR_INPUT_INVALID; range checks happen in the simulator.
 */
export function parseSlots(value: string, max: number): number[] {
  const out = new Set<number>()
  for (const part of value.split(',').map((s) => s.trim()).filter(Boolean)) {
    const m = /^(\d+)\.\.(\d+|E)(?::(\d+))?$/.exec(part)
    if (m) {
      const a = Number(m[1])
      const b = m[2] === 'E' ? max : Number(m[2])
      const step = m[3] ? Number(m[3]) : 1
      if (step < 1 || b < a) throw new MoeError(ErrorCodes.INPUT_INVALID, `--slots: bad range '${part}'`, { path: '--slots' })
      for (let s = a; s <= b; s += step) out.add(s)
    } else if (/^\d+$/.test(part)) {
      out.add(Number(part))
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
    .requiredOption('--trace <file>', 'JSONL routing trace ({"layer","token","experts":[...]} per line)')
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
    .action(async (flags: CacheFlags) => {
      const path = resolve(ctx.cwd, flags.trace)
      const batch = intOption(flags.batch, '--batch', 1) as number
      const layer = intOption(flags.layer, '--layer', 0)
      const devices = intOption(flags.devices, '--devices', 1) as number
      let experts = intOption(flags.experts, '--experts', 1)
      const records: RoutedTokenRecord[] = []
      for await (const r of readJsonlTrace(path, { ...(experts !== undefined ? { experts } : {}), ...(layer !== undefined ? { layer } : {}) })) records.push(r)
      if (records.length === 0) throw new MoeError(ErrorCodes.TRACE_CORRUPT, `${flags.trace}: no routing records${layer !== undefined ? ` for layer ${layer}` : ''}`, { file: flags.trace })
      experts ??= 1 + Math.max(...records.map((r) => Math.max(...r.experts)))
      const trace = batchRecords(records, { experts, batch, name: flags.trace })
      const perDevice = Math.ceil(experts / devices)
      const slots = parseSlots(flags.slots ?? `1..${perDevice}`, perDevice)
      const policies = flags.policy.split(',').map((s) => s.trim()).filter(Boolean)
      const expertBytes = intOption(flags.expertBytes, '--expert-bytes', 1)
      const table = simulateCache(trace, {
        slots,
        policies,
        devices,
        bypassLargeBatches: flags.bypass === true,
        ...(expertBytes !== undefined ? { expertBytes } : {}),
      })
      if (flags.plot) {
        const out = resolve(ctx.cwd, flags.plot)
        writeFileSync(out, cacheTableSvg(table))
        if (!flags.json) ctx.err(`wrote ${flags.plot}`)
      }
      ctx.out(flags.json ? JSON.stringify(table, null, 2) : formatCacheTable(table))
    })
}
