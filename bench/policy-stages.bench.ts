/**
 * GPU time of the capacity family's policy stages (capacity-drop, expert-drop,
 * device-capacity, expanded-drop, reroute, spare-capacity-reroute) inside the WebGPU device pipeline, against the host `apply` of the same
 * policy on the same routing (what a host round trip would spend in JS alone, transfers not
 * counted). Routing-only batches: logits in, the device router (softmax top-k), the policy,
 * the exact-size grouping; no expert FFN.
 *
 * Shapes: Mixtral-like E 8, k 2 and OLMoE-like E 64, k 8, 8 devices (contiguous placement),
 * and device-capacity on 1 device at γ 0.8 (every pair ranked in one workgroup: its worst case), at
 * T = 1, 8, 32 (decode batches, policies set to act on them) and 512 (prefill).
 *
 * Usage (after `npm run build`):
 *   ../shared/gpu/prepare.sh bench/policy-stages.bench.ts
 *   source .gpu/env.sh && node .gpu/policy-stages.bench.mjs --out out/policy-stages
 * Smoke run on lavapipe:  XDG_RUNTIME_DIR=/tmp npx tsx bench/policy-stages.bench.ts --tiny --out /tmp/ps
 *
 * Flags: --tiny (T 1 and 32, 5 reps), --reps N (timed batches per point, default 50),
 *   --tokens 1,8,32,512, --out DIR (JSON of every point).
 */
import { createWebGpuBackend, probeAdapter } from '@moe-route/backend-webgpu'
import { contiguousPlacement, createRegistry, exactSizeDispatcher, mixSeed, mulberry32, normal, softmaxTopK, type Dispatcher, type ModelShape, type Plugin, type Router, type RoutingPolicy } from '@moe-route/core'
import capacityDrop from '@moe-route/policy-capacity/capacity-drop'
import deviceCapacity from '@moe-route/policy-capacity/device-capacity'
import expandedDrop from '@moe-route/policy-capacity/expanded-drop'
import expertDrop from '@moe-route/policy-capacity/expert-drop'
import reroute from '@moe-route/policy-capacity/reroute'
import spareCapacityReroute from '@moe-route/policy-capacity/spare-capacity-reroute'
import { mkdirSync, writeFileSync } from 'node:fs'
import { cpus } from 'node:os'
import { join } from 'node:path'

const argv = process.argv.slice(2)
const flag = (name: string): boolean => argv.includes(`--${name}`)
const opt = (name: string, fallback: string): string => {
  const i = argv.indexOf(`--${name}`)
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : fallback
}
const tiny = flag('tiny')
const reps = Number(opt('reps', tiny ? '5' : '50'))
const tokenList = opt('tokens', tiny ? '1,32' : '1,8,32,512').split(',').map(Number)
const outDir = opt('out', '')

interface Shape {
  readonly name: string
  readonly model: ModelShape
}
const shapes: Shape[] = [
  { name: 'mixtral E8 k2', model: { experts: 8, topK: 2, hidden: 16, intermediate: 16, normalizeTopK: true } },
  { name: 'olmoe E64 k8', model: { experts: 64, topK: 8, hidden: 16, intermediate: 16, normalizeTopK: false } },
]
interface Case {
  readonly plugin: Plugin<'policy'>
  readonly label: string
  readonly options: (E: number) => object
  readonly devices: number
}
const cases: Case[] = [
  { plugin: capacityDrop, label: 'capacity-drop γ1 score', options: () => ({ capacityFactor: 1, applyToDecode: true }), devices: 8 },
  { plugin: expertDrop, label: 'expert-drop 1 (E8) / 0.1 (E64)', options: (E) => ({ drop: E <= 8 ? 1 : 0.1, applyToDecode: true }), devices: 8 },
  { plugin: deviceCapacity, label: 'device-capacity γ1, 8 devices', options: () => ({ capacityFactor: 1, applyToDecode: true }), devices: 8 },
  // γ 0.8: with one device γ 1 keeps every pair and the ranking is skipped
  { plugin: deviceCapacity, label: 'device-capacity γ0.8, 1 device', options: () => ({ capacityFactor: 0.8, applyToDecode: true }), devices: 1 },
  { plugin: expandedDrop, label: 'expanded-drop γ1 local, 8 devices', options: () => ({ capacityFactor: 1, candidates: 'local', applyToDecode: true }), devices: 8 },
  { plugin: reroute, label: 'reroute γ1, 2 rounds', options: () => ({ capacityFactor: 1, rounds: 2, applyToDecode: true }), devices: 8 },
  { plugin: spareCapacityReroute, label: 'spare-capacity-reroute γ1', options: () => ({ capacityFactor: 1, applyToDecode: true }), devices: 8 },
]

/** A stage's GPU ms: its kernels are timed as `stage|kernel` (or under the stage's name alone). */
const stageMs = (kernels: Record<string, number> | undefined, stage: string): number | undefined => {
  const times = Object.entries(kernels ?? {}).filter(([k]) => k === stage || k.startsWith(`${stage}|`))
  return times.length ? times.reduce((a, [, ms]) => a + ms, 0) : undefined
}

const median = (xs: number[]): number => {
  const s = xs.slice().sort((a, b) => a - b)
  return s.length ? s[Math.floor(s.length / 2)] : NaN
}

const adapter = await probeAdapter()
if (!adapter) throw new Error('no WebGPU adapter (on a machine without a GPU install Mesa lavapipe: scripts/install-lavapipe.sh)')
const backend = createWebGpuBackend({ weightsDtype: 'f32', profile: true })
const registry = createRegistry([capacityDrop, expertDrop, deviceCapacity, expandedDrop, reroute, spareCapacityReroute])
console.log(`policy stages on ${adapter}; host side: Node ${process.version} on ${cpus()[0]?.model ?? 'unknown CPU'}; ${reps} timed batches per point (medians)`)
console.log('| shape | policy | T | decode | stage GPU µs | host apply µs | dropped |')
console.log('|---|---|---|---|---|---|---|')
const rows: object[] = []
try {
  for (const shape of shapes) {
    const { model } = shape
    for (const c of cases) {
      const placement = contiguousPlacement(model.experts, c.devices)
      const ctx = { model, devices: c.devices, seed: 1, placement }
      const policy = registry.create('policy', c.plugin.meta.name, c.options(model.experts), ctx) as RoutingPolicy
      const router = registry.create('router', 'softmax-top-k', {}, ctx) as Router
      const dispatcher = exactSizeDispatcher.create({}, ctx) as Dispatcher
      const pipeline = await backend.pipeline({ model, placement, seed: 1, router, policies: [policy], dispatcher, weights: { kind: 'seeded', seed: 1, std: 0.02 }, activationBytes: 2 })
      if (pipeline.stages[1]?.where !== 'device') throw new Error(`${c.label}: the policy did not lower`)
      for (const T of tokenList) {
        const decode = T <= 32
        const gauss = normal(mulberry32(T * 7919 + model.experts))
        const logits = Float32Array.from({ length: T * model.experts }, () => gauss())
        const batch = { tokens: T, logits, ...(decode ? { decode: true as const } : {}) }
        const gpu: number[] = []
        let dropped = 0
        for (let i = 0; i < reps + 3; i++) {
          const res = await pipeline.forward({ id: i, ...batch }, { detail: 'telemetry' })
          const ms = stageMs(res.kernels, `policy:${c.plugin.meta.name}`)
          if (i >= 3 && ms !== undefined) gpu.push(ms * 1000)
          dropped = res.counts.policies[0].dropped
        }
        // host side: the same routing and the same policy's apply
        const routing = softmaxTopK({ tokens: T, experts: model.experts, logits, ...(decode ? { decode: true } : {}) }, model.topK, model.normalizeTopK)
        const host: number[] = []
        for (let i = 0; i < reps + 3; i++) {
          const t0 = performance.now()
          policy.apply(routing, { placement, batchId: i, random: mulberry32(mixSeed(1, i, 0)) })
          if (i >= 3) host.push((performance.now() - t0) * 1000)
        }
        const row = { shape: shape.name, policy: c.label, devices: c.devices, tokens: T, decode, gpuUs: gpu.length ? median(gpu) : null, hostUs: median(host), dropped, adapter }
        rows.push(row)
        console.log(`| ${shape.name} | ${c.label} | ${T} | ${decode ? 'yes' : 'no'} | ${row.gpuUs === null ? 'n/a (no timestamps)' : row.gpuUs.toFixed(1)} | ${row.hostUs.toFixed(1)} | ${dropped} |`)
      }
      await pipeline.dispose()
    }
  }
} finally {
  await backend.dispose()
}
if (outDir) {
  mkdirSync(outDir, { recursive: true })
  writeFileSync(join(outDir, 'policy-stages.json'), JSON.stringify({ adapter, node: process.version, reps, rows }, null, 2))
}
