/**
 * The page: a Mixtral-shaped layer on the browser's WebGPU device, fed with recorded Mixtral
 * routing (dist/routing.json, written by build.mjs), and the per-expert load before and after
 * capacity-drop as a Chart.js bar chart. The result is also left on `window.moeRouteExample`
 * (for the example's test, and for poking at in the console).
 */
import { createMoe, type TokenBatch } from '@moe-route/core'
import capacityDrop from '@moe-route/policy-capacity-drop'
import { webgpuBackend } from '@moe-route/backend-webgpu'
import type { RecordedRouting } from '../build.mjs'
import { GAMMAS, MODEL, layerConfig } from './model.js'
import { BarController, BarElement, CategoryScale, Chart, Legend, LineController, LineElement, LinearScale, PointElement, Title, Tooltip } from 'chart.js'

Chart.register(BarController, BarElement, CategoryScale, LinearScale, LineController, LineElement, PointElement, Legend, Title, Tooltip)

/** One batch's telemetry, as the page shows it. */
export interface BatchView {
  readonly tokens: number
  readonly capacity: number | null
  readonly loadBefore: number[]
  readonly loadAfter: number[]
  readonly droppedPairs: number
  readonly pairsBefore: number
  readonly maxMeanBefore: number
  readonly maxMeanAfter: number
  readonly outputNorm: number | null
  readonly backend: string | null
  readonly fallback: string | null
}

/** What a run left on `window.moeRouteExample`. */
export interface ExampleResult {
  readonly spec: string
  readonly gamma: number
  readonly adapter: string
  readonly stages: { stage: string; where: string }[]
  readonly ms: number
  readonly batches: BatchView[]
  /** Pairs per expert over all batches, before and after the policy, and the summed capacity. */
  readonly totals: { before: number[]; after: number[]; capacity: number }
}

const $ = <T extends HTMLElement>(id: string) => document.getElementById(id) as T
const sum = (xs: readonly number[]) => xs.reduce((a, b) => a + b, 0)

/** Runs every recorded batch through the layer on WebGPU with capacity-drop at `gamma`. */
async function runLayer(routing: RecordedRouting, gamma: number): Promise<ExampleResult> {
  const engine = createMoe({
    plugins: [capacityDrop, webgpuBackend],
    // seeded normal(0, 0.05) weights, generated on the GPU (f16); the device comes from navigator.gpu
    config: layerConfig(gamma),
  })
  try {
    const stages = (await engine.ready()).map((s) => ({ stage: s.stage, where: s.where }))
    const backend = engine.backend!
    const t0 = performance.now()
    const batches: BatchView[] = []
    for (const b of routing.batches) {
      // hidden states made on the device (the recorded routing carries no activations)
      const hidden = await backend.syntheticHidden!(b.tokens, MODEL.hidden, 1000 + b.id)
      const batch: TokenBatch = { id: b.id, tokens: b.tokens, scores: Float32Array.from(b.scores), ...(hidden instanceof Float32Array ? { hidden } : { deviceHidden: hidden }) }
      const r = await engine.forward(batch, { detail: 'telemetry', output: 'norm' })
      if (!(hidden instanceof Float32Array)) hidden.release()
      const t = r.telemetry
      batches.push({
        tokens: t.tokens,
        capacity: t.policies[0]?.capacity ?? null,
        loadBefore: [...t.loadBefore],
        loadAfter: [...t.loadAfter],
        droppedPairs: t.droppedPairs,
        pairsBefore: t.pairsBefore,
        maxMeanBefore: t.maxMeanBefore,
        maxMeanAfter: t.maxMeanAfter,
        outputNorm: r.outputNorm ?? null,
        backend: t.backend ?? null,
        fallback: t.fallback ? `${t.fallback.from} → ${t.fallback.to}: ${t.fallback.reason}` : null,
      })
    }
    const ms = performance.now() - t0
    const E = MODEL.experts
    const totals = {
      before: Array.from({ length: E }, (_, e) => sum(batches.map((b) => b.loadBefore[e]))),
      after: Array.from({ length: E }, (_, e) => sum(batches.map((b) => b.loadAfter[e]))),
      capacity: sum(batches.map((b) => b.capacity ?? 0)),
    }
    return { spec: routing.spec, gamma, adapter: backend.info().adapter ?? backend.name, stages, ms, batches, totals }
  } finally {
    await engine.dispose()
  }
}

let chart: Chart | null = null

/** Draws the grouped bars (before / after) and the capacity line; fills the table. */
function render(result: ExampleResult): void {
  const labels = result.totals.before.map((_, e) => `expert ${e}`)
  const data = {
    labels,
    datasets: [
      { type: 'bar' as const, label: 'before capacity-drop', data: result.totals.before, backgroundColor: '#8c959f' },
      { type: 'bar' as const, label: 'after capacity-drop', data: result.totals.after, backgroundColor: '#0969da' },
      { type: 'line' as const, label: `capacity (γ = ${result.gamma})`, data: labels.map(() => result.totals.capacity), borderColor: '#cf222e', borderDash: [6, 4], pointRadius: 0, borderWidth: 2 },
    ],
  }
  chart?.destroy()
  chart = new Chart($<HTMLCanvasElement>('chart'), {
    type: 'bar',
    data,
    options: {
      animation: false,
      maintainAspectRatio: false,
      scales: { y: { beginAtZero: true, title: { display: true, text: '(token, expert) pairs' } } },
      plugins: { title: { display: true, text: `${result.spec}: ${result.batches.length} batches × ${result.batches[0]?.tokens ?? 0} tokens, top-${MODEL.topK}` } },
    },
  })
  const rows = result.totals.before.map((b, e) => `<tr><td>expert ${e}</td><td>${b}</td><td>${result.totals.after[e]}</td><td>${b - result.totals.after[e]}</td></tr>`)
  $('loads').querySelector('tbody')!.innerHTML = rows.join('')
}

function describe(r: ExampleResult): string {
  const pairs = sum(r.batches.map((b) => b.pairsBefore))
  const dropped = sum(r.batches.map((b) => b.droppedPairs))
  const worst = (k: 'maxMeanBefore' | 'maxMeanAfter') => Math.max(...r.batches.map((b) => b[k])).toFixed(2)
  return [
    `adapter: ${r.adapter}`,
    `pipeline: ${r.stages.map((s) => `${s.stage} [${s.where}]`).join(' → ')}`,
    `${r.batches.length} batches on ${r.batches[0]?.backend ?? '?'} in ${r.ms.toFixed(0)} ms; dropped ${dropped} of ${pairs} pairs (γ = ${r.gamma}); worst max/mean load ${worst('maxMeanBefore')} → ${worst('maxMeanAfter')}`,
  ].join('\n')
}

async function main(): Promise<void> {
  const status = $('status')
  const gamma = $<HTMLSelectElement>('gamma')
  gamma.innerHTML = GAMMAS.map((g) => `<option value="${g}">${g.toFixed(2)}</option>`).join('')
  const routing = (await (await fetch('./routing.json')).json()) as RecordedRouting
  const run = async () => {
    document.body.dataset.state = 'running'
    gamma.disabled = true
    status.textContent = `Running ${routing.batches.length} batches of ${routing.spec} on WebGPU…`
    try {
      const result = await runLayer(routing, Number(gamma.value))
      render(result)
      status.textContent = describe(result)
      ;(globalThis as { moeRouteExample?: ExampleResult }).moeRouteExample = result
      document.body.dataset.state = 'done'
    } catch (e) {
      status.textContent = `Failed: ${(e as Error).message}`
      document.body.dataset.state = 'error'
      throw e
    } finally {
      gamma.disabled = false
    }
  }
  gamma.addEventListener('change', () => void run())
  await run()
}

void main()
