/**
 * The capacity family's policy stages on the device against their host `apply`: for each
 * shape (E 8 / top-2 and E 64 / top-8, 8 devices under expert parallelism, every token's
 * source device = token mod 8) and batch size (1, 8, 32 and 512 tokens), it routes skewed
 * logits (per-expert bias ~ normal(0, 1.5), so some experts overflow) with the device router,
 * runs one policy lowered to WGSL, and records
 *   - device: the policy stage's kernel time (timestamp queries, every pass of the stage,
 *     median over iterations) and its dispatch count,
 *   - host: the wall time of the policy's `apply` on the same routing (median),
 * after checking that the device routing equals the host's (pairs, weights within 1e-6).
 * Policies: capacity-drop (reference), expanded-drop (local candidates), reroute (2 rounds)
 * and spare-capacity-reroute, all at γ = 1.0 with decode batches capped.
 *
 * Usage (after `npm run build`):
 *   ../shared/gpu/prepare.sh bench/policy-stages.bench.ts
 *   source .gpu/env.sh && node .gpu/policy-stages.bench.mjs --out out/policy-stages
 * Smoke run on lavapipe (no timestamp queries there: device times are wall times per forward):
 *   XDG_RUNTIME_DIR=/tmp npx tsx bench/policy-stages.bench.ts --tiny --out /tmp/ps
 * Flags: --tiny (T 1, 8, 64 and 4 iterations), --iters N (default 50), --out DIR.
 */
import { createWebGpuBackend } from '@moe-route/backend-webgpu'
import {
  contiguousPlacement,
  exactSizeDispatcher,
  mixSeed,
  mulberry32,
  normal,
  pairsOf,
  softmaxTopKRouter,
  type Dispatcher,
  type ModelShape,
  type Router,
  type RoutingPolicy,
} from '@moe-route/core'
import { createTokenDrop } from '@moe-route/policy-capacity-drop'
import { createExpandedDrop } from '@moe-route/policy-expanded-drop'
import { createReroute } from '@moe-route/policy-reroute'
import { createSpareCapacityReroute } from '@moe-route/policy-spare-capacity-reroute'
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

const argv = process.argv.slice(2)
const flag = (name: string) => argv.includes(`--${name}`)
const opt = (name: string, fallback: string) => {
  const i = argv.indexOf(`--${name}`)
  return i >= 0 && i + 1 < argv.length ? argv[i + 1] : fallback
}
const tiny = flag('tiny')
const iters = Number(opt('iters', tiny ? '4' : '50'))
const outDir = opt('out', 'out/policy-stages')
const DEVICES = 8
const shapes = [
  { experts: 8, topK: 2 },
  { experts: 64, topK: 8 },
]
const batches = tiny ? [1, 8, 64] : [1, 8, 32, 512]
const policies: [string, () => RoutingPolicy][] = [
  ['capacity-drop', () => createTokenDrop({ capacityFactor: 1, applyToDecode: true })],
  ['expanded-drop', () => createExpandedDrop({ capacityFactor: 1, candidates: 'local', applyToDecode: true })],
  ['reroute', () => createReroute({ capacityFactor: 1, rounds: 2, applyToDecode: true })],
  ['spare-capacity-reroute', () => createSpareCapacityReroute({ capacityFactor: 1, applyToDecode: true })],
]

const median = (xs: number[]) => {
  const s = xs.slice().sort((a, b) => a - b)
  return s.length ? s[Math.floor(s.length / 2)] : NaN
}

interface Row {
  policy: string
  experts: number
  topK: number
  tokens: number
  dispatches: number
  deviceMs: number
  deviceTimed: 'kernels' | 'wall'
  hostMs: number
}

const backend = createWebGpuBackend({ weightsDtype: 'f32', profile: true })
const adapter = await backend.ready()
const rows: Row[] = []
for (const { experts: E, topK: k } of shapes) {
  const model: ModelShape = { experts: E, topK: k, hidden: 16, intermediate: 16, normalizeTopK: false }
  const placement = contiguousPlacement(E, DEVICES)
  const gauss = normal(mulberry32(7))
  const bias = Float32Array.from({ length: E }, () => 1.5 * gauss())
  for (const T of batches) {
    const logits = new Float32Array(T * E)
    for (let i = 0; i < logits.length; i++) logits[i] = gauss() + bias[i % E]
    const sourceDevice = Int32Array.from({ length: T }, (_, t) => t % DEVICES)
    for (const [name, make] of policies) {
      const policy = make()
      const router = softmaxTopKRouter.create({ normalizeTopK: null }, { model, devices: DEVICES, seed: 1 }) as Router
      const dispatcher = exactSizeDispatcher.create({}, { model, devices: DEVICES, seed: 1 }) as Dispatcher
      const pipeline = await backend.pipeline({ model, placement, seed: 1, router, policies: [policy], dispatcher, weights: { kind: 'seeded', seed: 1, std: 0.02 }, activationBytes: 2 } as never)
      const stage = policy.lower?.({ model, devices: DEVICES, placement, slotsIn: k, subgroups: false, subgroupSize: null, maxWorkgroupSize: 256 })
      if (!stage || stage.kind !== 'wgsl' || pipeline.stages.find((s) => s.stage === `policy:${name}`)?.where !== 'device') throw new Error(`${name} did not lower`)
      const batch = { id: 3, tokens: T, logits, sourceDevice }
      // same decisions as the host (on the device router's routing) before timing anything
      const full = await pipeline.forward(batch, { detail: 'full', output: 'norm' })
      const routing = full.detail!.original
      const host = policy.apply(routing, { placement, batchId: 3, random: mulberry32(mixSeed(1, 3, 0)) })
      const key = (p: { token: number; expert: number; weight: number }) => `${p.token}:${p.expert}`
      const sort = (a: { token: number; expert: number }, b: { token: number; expert: number }) => a.token - b.token || a.expert - b.expert
      const h = pairsOf(host.routing).sort(sort)
      const d = pairsOf(full.detail!.routing).sort(sort)
      if (h.map(key).join() !== d.map(key).join() || h.some((p, i) => Math.abs(p.weight - d[i].weight) > 1e-6 * Math.max(1, p.weight))) throw new Error(`${name} E=${E} T=${T}: device and host differ`)
      const dev: number[] = []
      let timed: Row['deviceTimed'] = 'kernels'
      for (let i = 0; i < iters + 2; i++) {
        const t0 = performance.now()
        const res = await pipeline.forward(batch, { detail: 'telemetry', output: 'norm' })
        const wall = performance.now() - t0
        const ms = res.kernels?.[`policy:${name}`]
        if (ms === undefined) timed = 'wall'
        if (i >= 2) dev.push(ms ?? wall)
      }
      const hostTimes: number[] = []
      for (let i = 0; i < iters + 2; i++) {
        const t0 = performance.now()
        policy.apply(routing, { placement, batchId: 3, random: mulberry32(1) })
        if (i >= 2) hostTimes.push(performance.now() - t0)
      }
      const info = { tokens: T, batchId: 3, decode: false, sourceTokens: null, seed: 0 }
      const dispatches = stage.passes.filter((p) => (!p.when || p.when(info)) && p.workgroups(info) > 0).length
      rows.push({ policy: name, experts: E, topK: k, tokens: T, dispatches, deviceMs: median(dev), deviceTimed: timed, hostMs: median(hostTimes) })
      await pipeline.dispose()
    }
  }
}
await backend.dispose()

const machine = `${adapter}; node ${process.version}; ${DEVICES} devices (contiguous placement)`
const lines = [
  `policy stages on the device vs host apply — ${machine}; median of ${iters}`,
  '',
  '| policy | E | k | T | dispatches | device ms | host apply ms |',
  '| --- | --- | --- | --- | --- | --- | --- |',
  ...rows.map((r) => `| ${r.policy} | ${r.experts} | ${r.topK} | ${r.tokens} | ${r.dispatches} | ${r.deviceMs.toFixed(4)}${r.deviceTimed === 'wall' ? ' (wall, whole forward)' : ''} | ${r.hostMs.toFixed(4)} |`),
]
console.log(lines.join('\n'))
mkdirSync(outDir, { recursive: true })
writeFileSync(join(outDir, 'policy-stages.json'), JSON.stringify({ machine, iters, rows }, null, 2))
writeFileSync(join(outDir, 'policy-stages.md'), lines.join('\n') + '\n')
