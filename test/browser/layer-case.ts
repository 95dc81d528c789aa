/**
 * The layer the browser test runs, shared by the page (bundled for Chromium) and the Node side
 * (the CPU reference): the same model, config and batches as the Node WebGPU test
 * (packages/backends/webgpu/src/pipeline/device-pipeline.test.ts), and one plain-JSON view of a
 * result so that both sides can be compared after crossing the page boundary.
 */
import { pairsOf, type LayerResult, type MoeConfig, type TokenBatch } from '@moe-route/core'
import { randomHidden } from '@moe-route/workloads/synthetic'

/** E 8, k 2, H 32, I 48 (renormalised top-2): the Node WebGPU test's shape. */
export const MODEL = { experts: 8, topK: 2, hidden: 32, intermediate: 48, normalizeTopK: true }

/** Batch sizes run, each twice (hidden states seeded 100 + i). */
export const TOKENS = [1, 5, 37] as const

/** capacity-drop at γ = 1.0 with seeded weights; `backend` is `webgpu` (f32 weights: exact parity) or `cpu`. */
export function layerConfig(backend: 'webgpu' | 'cpu'): MoeConfig {
  return {
    model: MODEL,
    policies: [{ use: 'capacity-drop', options: { capacityFactor: 1.0 } }],
    backend: { use: backend, ...(backend === 'webgpu' ? { options: { weightsDtype: 'f32' } } : {}) },
    weights: { seed: 3, std: 0.05 },
  }
}

/** The batches of the case, in order: for each T of {@link TOKENS}, two batches. */
export function layerBatches(): TokenBatch[] {
  const out: TokenBatch[] = []
  for (const T of TOKENS) for (let i = 0; i < 2; i++) out.push({ id: i, tokens: T, hidden: randomHidden(T, MODEL.hidden, 100 + i) })
  return out
}

/** A layer result as plain JSON: kept pairs, dropped pairs, the dispatch plan, telemetry and the output. */
export interface ResultView {
  readonly tokens: number
  /** Kept pairs `[token, expert, weight]`, sorted by token then expert. */
  readonly pairs: [number, number, number][]
  /** `token:expert:reason:policy` of each dropped pair, in the engine's order. */
  readonly dropped: string[]
  readonly counts: number[]
  readonly offsets: number[]
  readonly rowToken: number[]
  readonly telemetry: {
    readonly pairsBefore: number
    readonly pairsAfter: number
    readonly droppedPairs: number
    readonly addedPairs: number
    readonly tokensFullyDropped: number
    readonly loadBefore: number[]
    readonly loadAfter: number[]
    readonly gateMassKept: number
    readonly policies: [string, number, number | null][]
    readonly backend: string | null
    readonly hostRoundTrips: Record<string, number> | null
    readonly fallback: string | null
  }
  readonly output: number[]
  readonly outputNorm: number
}

/** The plain-JSON view of a full result (`forward()` with the default detail). */
export function viewOf(r: LayerResult): ResultView {
  const t = r.telemetry
  return {
    tokens: r.tokens,
    pairs: pairsOf(r.routing)
      .sort((a, b) => a.token - b.token || a.expert - b.expert)
      .map((p) => [p.token, p.expert, p.weight]),
    dropped: r.dropped.map((d) => `${d.token}:${d.expert}:${d.reason}:${d.policy}`),
    counts: Array.from(r.plan.counts),
    offsets: Array.from(r.plan.offsets),
    rowToken: Array.from(r.plan.rowToken),
    telemetry: {
      pairsBefore: t.pairsBefore,
      pairsAfter: t.pairsAfter,
      droppedPairs: t.droppedPairs,
      addedPairs: t.addedPairs,
      tokensFullyDropped: t.tokensFullyDropped,
      loadBefore: Array.from(t.loadBefore),
      loadAfter: Array.from(t.loadAfter),
      gateMassKept: t.gateMassKept,
      policies: t.policies.map((p) => [p.policy, p.dropped, p.capacity ?? null]),
      backend: t.backend ?? null,
      hostRoundTrips: t.hostRoundTrips ?? null,
      fallback: t.fallback ? `${t.fallback.from} → ${t.fallback.to}: ${t.fallback.reason}` : null,
    },
    output: Array.from(r.output ?? []),
    outputNorm: r.outputNorm ?? Number.NaN,
  }
}

/** What the page reports for one way of getting the device. */
export interface PageRun {
  /** `config`: the backend named in the config acquires the device (navigator.gpu); `device`: the page hands in its own GPUDevice. */
  readonly mode: 'config' | 'device'
  readonly adapter: string
  readonly stages: { stage: string; where: string }[]
  readonly results: ResultView[]
}

/** What the page exposes to the test as `window.moeRouteTest`. */
export interface PageApi {
  /** Runs {@link layerBatches} through the engine on the WebGPU backend. */
  run(mode: PageRun['mode']): Promise<PageRun>
  /** The coded error of a config that loads weights from a safetensors path (no file system in a page). */
  checkpointError(): Promise<{ code: string; message: string } | null>
}
