/**
 * GPU time of the routing stages of a device pipeline, per stage, from timestamp queries: the
 * routers (core softmax-top-k vs the `c2r` lowering), a policy (`device-limit` lowering vs none)
 * and the dispatchers (core exact-size vs `dynamic-gating` dynamic and static groupings), at
 * E 8 / k 2 and E 64 / k 8, T ∈ {1, 8, 32, 512}. Routing-only batches (seeded logits, no
 * hidden states): gate, experts and combine do not run, so each stage's time is its own.
 * Prints the adapter, then one JSON line per configuration: median ms of each stage over the
 * iterations (after two warm-up calls), or the median wall ms of a call where the adapter has
 * no timestamp queries.
 *
 * Usage: npx tsx bench/lowering-stages.bench.ts [--iters n] [--tokens 1,8,32,512] [--out file.json]
 */
import { writeFileSync } from 'node:fs'
import { contiguousPlacement, createRegistry, exactSizeDispatcher, mulberry32, softmaxTopKRouter, type Dispatcher, type ModelShape, type Plugin, type Router, type RoutingPolicy } from '@moe-route/core'
import { createWebGpuBackend } from '@moe-route/backend-webgpu'
import { c2rRouter, deviceLimitPolicy } from '@moe-route/policy-c2r'
import dynamicGating from '@moe-route/policy-dynamic-gating'

const args = process.argv.slice(2)
const opt = (name: string, def: string) => {
  const i = args.indexOf(name)
  return i >= 0 && args[i + 1] ? args[i + 1] : def
}
const iters = Number(opt('--iters', '20'))
const TOKENS = opt('--tokens', '1,8,32,512').split(',').map(Number)
const out = opt('--out', '')
const DEVICES = 4

const SHAPES: (ModelShape & { label: string; topT: number })[] = [
  { label: 'E8-k2', experts: 8, topK: 2, hidden: 16, intermediate: 16, normalizeTopK: true, topT: 5 },
  { label: 'E64-k8', experts: 64, topK: 8, hidden: 16, intermediate: 16, normalizeTopK: false, topT: 30 },
]

/** Seeded collaborator lists (each expert's others in a random order). */
function lists(experts: number): number[][] {
  const rand = mulberry32(7)
  return Array.from({ length: experts }, (_, e) => {
    const o = Array.from({ length: experts }, (_, i) => i).filter((i) => i !== e)
    for (let i = o.length - 1; i > 0; i--) {
      const j = Math.floor(rand() * (i + 1))
      ;[o[i], o[j]] = [o[j], o[i]]
    }
    return o
  })
}

const CONFIGS: { name: string; router: 'softmax-top-k' | 'c2r'; policy?: 'device-limit'; dispatcher: 'exact-size' | 'dynamic' | 'static' }[] = [
  { name: 'softmax-top-k + exact-size', router: 'softmax-top-k', dispatcher: 'exact-size' },
  { name: 'c2r + exact-size', router: 'c2r', dispatcher: 'exact-size' },
  { name: 'softmax-top-k + device-limit(2) + exact-size', router: 'softmax-top-k', policy: 'device-limit', dispatcher: 'exact-size' },
  { name: 'softmax-top-k + dynamic-gating dynamic', router: 'softmax-top-k', dispatcher: 'dynamic' },
  { name: 'softmax-top-k + dynamic-gating static (expert-share 1.25, choice)', router: 'softmax-top-k', dispatcher: 'static' },
]

const backend = createWebGpuBackend({ weightsDtype: 'f32', profile: true })
const adapter = await backend.ready()
console.log(JSON.stringify({ adapter, node: process.version, iters, devices: DEVICES }))
const registry = createRegistry([softmaxTopKRouter, c2rRouter, deviceLimitPolicy, dynamicGating, exactSizeDispatcher] as Plugin[])
const median = (xs: number[]) => xs.slice().sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const rows: object[] = []
for (const shape of SHAPES) {
  const { label, topT, ...model } = shape
  const placement = contiguousPlacement(model.experts, DEVICES)
  const ctx = { model, devices: DEVICES, seed: 1, placement }
  for (const cfg of CONFIGS) {
    const router = registry.create('router', cfg.router, cfg.router === 'c2r' ? { topT, collaborators: lists(model.experts), normalizeTopK: null } : {}, ctx) as Router
    const policies = cfg.policy ? [registry.create('policy', cfg.policy, { maxDevices: 2 }, ctx) as RoutingPolicy] : []
    const dispatcher = (cfg.dispatcher === 'exact-size'
      ? registry.create('dispatcher', 'exact-size', {}, ctx)
      : registry.create('dispatcher', 'dynamic-gating', cfg.dispatcher === 'dynamic' ? { mode: 'dynamic' } : { mode: 'static', capacityFactor: 1.25, capacityRule: 'expert-share', priority: 'choice' }, ctx)) as Dispatcher
    const pipeline = await backend.pipeline({ model, placement, seed: 1, router, policies, dispatcher, weights: { kind: 'seeded', seed: 1, std: 0.02 }, activationBytes: 2 })
    for (const T of TOKENS) {
      const rand = mulberry32(T)
      const logits = Float32Array.from({ length: T * model.experts }, () => rand() * 4 - 2)
      const sourceDevice = Int32Array.from({ length: T }, (_, t) => t % DEVICES)
      const times: Record<string, number[]> = {}
      const wall: number[] = []
      for (let i = 0; i < iters + 2; i++) {
        const t0 = performance.now()
        const res = await pipeline.forward({ id: i, tokens: T, logits, sourceDevice, ...(T <= 32 ? { decode: true } : {}) }, { detail: 'telemetry', output: 'norm' })
        if (i < 2) continue
        wall.push(performance.now() - t0)
        for (const [k, ms] of Object.entries(res.kernels ?? {})) (times[k] ??= []).push(ms)
      }
      const stages = Object.fromEntries(Object.entries(times).filter(([k]) => /^(router|policy|dispatch):/.test(k)).map(([k, v]) => [k, +median(v).toFixed(4)]))
      const row = { shape: label, T, config: cfg.name, stageMs: stages, wallMsPerCall: +median(wall).toFixed(3), stages: pipeline.stages.map((s) => `${s.stage}@${s.where}`) }
      rows.push(row)
      console.log(JSON.stringify(row))
    }
    await pipeline.dispose()
  }
}
if (out) writeFileSync(out, JSON.stringify({ adapter, iters, devices: DEVICES, rows }, null, 1))
await backend.dispose()
