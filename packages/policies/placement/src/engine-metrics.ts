/**
 * The load-balance numbers serving engines report, computed from per-layer expert loads and a
 * placement (phy2log slots, GPU-major):
 *
 * - vLLM `balancedness` per MoE layer = mean rank load / max rank load; its Prometheus gauges
 *   are the min, median (p50), 10th percentile ("p90": 90 % of layers at least this balanced)
 *   and mean over layers (`vllm/distributed/eplb/metrics.py`).
 * - TensorRT-LLM imbalance ratio = (max − mean) / mean of rank loads
 *   (`examples/wide_ep/ep_load_balancer/report_load_statistics.py`).
 * - SGLang utilization rate = (mean GPU load + 1e-5) / (max GPU load + 1e-5) per layer, averaged
 *   over layers (`compute_utilization_rate` in `python/sglang/srt/eplb/expert_distribution.py`).
 *
 * A replicated expert's load is split evenly over its slots (as TensorRT-LLM's projection and a
 * round-robin dispatch do). Percentiles interpolate linearly (numpy's default).
 */
import { ErrorCodes, MoeError, maxOf, minOf, quantile as coreQuantile } from '@moe-route/core'

/** Rank (device) loads of one layer from expert loads and its phy2log row. */
export function deviceLoadsOf(load: ArrayLike<number>, phy2log: readonly number[], gpus: number): number[] {
  if (!Number.isInteger(gpus) || gpus < 1 || phy2log.length % gpus !== 0) {
    throw new MoeError(ErrorCodes.INPUT_INVALID, `${phy2log.length} slots do not divide over ${gpus} devices`, { path: '/phy2log' })
  }
  const E = load.length
  const cnt = new Array<number>(E).fill(0)
  for (const e of phy2log) {
    if (!Number.isInteger(e) || e < 0 || e >= E) throw new MoeError(ErrorCodes.INPUT_INVALID, `slot holds expert ${e}, outside 0..${E - 1}`, { path: '/phy2log' })
    cnt[e]++
  }
  for (let e = 0; e < E; e++) {
    if (cnt[e] === 0 && load[e] > 0) throw new MoeError(ErrorCodes.INPUT_INVALID, `expert ${e} has load ${load[e]} but no slot in the placement`, { path: '/phy2log' })
  }
  const per = phy2log.length / gpus
  const out = new Array<number>(gpus).fill(0)
  phy2log.forEach((e, s) => (out[Math.floor(s / per)] += load[e] / cnt[e]))
  return out
}

/** mean / max of rank loads (0 when nothing ran), vLLM's balancedness. */
export function balancedness(ranks: readonly number[]): number {
  const max = Math.max(0, maxOf(ranks))
  return max === 0 ? 0 : ranks.reduce((a, b) => a + b, 0) / ranks.length / max
}

/** (max − mean) / mean of rank loads (0 when nothing ran), TensorRT-LLM's imbalance ratio. */
export function imbalanceRatio(ranks: readonly number[]): number {
  const mean = ranks.reduce((a, b) => a + b, 0) / ranks.length
  return mean === 0 ? 0 : (maxOf(ranks) - mean) / mean
}

/** (mean + 1e-5) / (max + 1e-5) of GPU loads, SGLang's per-layer utilization rate. */
export function utilizationRate(ranks: readonly number[]): number {
  const mean = ranks.reduce((a, b) => a + b, 0) / ranks.length
  return (mean + 1e-5) / (Math.max(0, ...ranks) + 1e-5)
}

/**
 * Linear-interpolated quantile (q in [0, 1]) of values; NaN for none.
 * @deprecated Import `quantile` from `@moe-route/core` (the one percentile definition); this
 * re-export stays for existing importers.
 */
export const quantile: (values: ArrayLike<number>, q: number) => number = coreQuantile

/** Engine metrics of one window (a whole record, or one step). */
export interface EngineMetrics {
  readonly devices: number
  /** Layer ids the per-layer arrays follow. */
  readonly layers: readonly number[]
  readonly vllm: {
    /** mean/max rank load per layer. */
    readonly balancedness: readonly number[]
    readonly min: number
    readonly p50: number
    /** 10th percentile: 90 % of layers are at least this balanced (vLLM's `eplb_balancedness_p90`). */
    readonly p90: number
    readonly avg: number
  }
  readonly trtllm: {
    /** (max − mean)/mean rank load per layer. */
    readonly imbalanceRatio: readonly number[]
    /** Mean over layers (the "average" row of report_load_statistics.py). */
    readonly avg: number
  }
  readonly sglang: {
    /** Per-layer utilization rate. */
    readonly utilization: readonly number[]
    /** Mean over layers (SGLang's per-pass `balancedness` / utilization rate). */
    readonly utilizationRate: number
  }
}

/**
 * The three engines' metrics of per-layer loads under per-layer placements.
 * @param loads `loads[i][e]`: pairs of expert e at layer `layers[i]`
 * @param phy2log `phy2log[i]`: that layer's slots (GPU-major); one row is reused for every layer
 * @example
 * const m = engineMetrics([0, 1], loads, [contiguousRow, contiguousRow], 8)
 * console.log(m.vllm.avg, m.trtllm.avg, m.sglang.utilizationRate)
 */
export function engineMetrics(layers: readonly number[], loads: readonly ArrayLike<number>[], phy2log: readonly (readonly number[])[], gpus: number): EngineMetrics {
  if (loads.length !== layers.length) throw new MoeError(ErrorCodes.SHAPE_MISMATCH, `${loads.length} load rows for ${layers.length} layers`)
  if (phy2log.length !== 1 && phy2log.length !== layers.length) {
    throw new MoeError(ErrorCodes.SHAPE_MISMATCH, `placement has ${phy2log.length} layers, the loads ${layers.length}`, { path: '/phy2log' })
  }
  const ranks = loads.map((l, i) => deviceLoadsOf(l, phy2log.length === 1 ? phy2log[0] : phy2log[i], gpus))
  const bal = ranks.map(balancedness)
  const imb = ranks.map(imbalanceRatio)
  const util = ranks.map(utilizationRate)
  const mean = (v: readonly number[]) => (v.length ? v.reduce((a, b) => a + b, 0) / v.length : Number.NaN)
  return {
    devices: gpus,
    layers,
    vllm: { balancedness: bal, min: minOf(bal), p50: quantile(bal, 0.5), p90: quantile(bal, 0.1), avg: mean(bal) },
    trtllm: { imbalanceRatio: imb, avg: mean(imb) },
    sglang: { utilization: util, utilizationRate: mean(util) },
  }
}

/** Means of per-step metrics (the way the engines average over steps / iterations / passes). */
export function averageMetrics(steps: readonly EngineMetrics[]): EngineMetrics | null {
  if (steps.length === 0) return null
  const L = steps[0].layers.length
  const avgRow = (pick: (m: EngineMetrics) => readonly number[]) => Array.from({ length: L }, (_, i) => steps.reduce((a, m) => a + pick(m)[i], 0) / steps.length)
  const avg = (pick: (m: EngineMetrics) => number) => steps.reduce((a, m) => a + pick(m), 0) / steps.length
  return {
    devices: steps[0].devices,
    layers: steps[0].layers,
    vllm: {
      balancedness: avgRow((m) => m.vllm.balancedness),
      min: avg((m) => m.vllm.min),
      p50: avg((m) => m.vllm.p50),
      p90: avg((m) => m.vllm.p90),
      avg: avg((m) => m.vllm.avg),
    },
    trtllm: { imbalanceRatio: avgRow((m) => m.trtllm.imbalanceRatio), avg: avg((m) => m.trtllm.avg) },
    sglang: { utilization: avgRow((m) => m.sglang.utilization), utilizationRate: avg((m) => m.sglang.utilizationRate) },
  }
}

/** One-paragraph text of {@link EngineMetrics}, for CLI reports. */
export function formatEngineMetrics(m: EngineMetrics, label: string): string {
  const f = (x: number) => (Number.isFinite(x) ? x.toFixed(3) : '–')
  return [
    `${label} (${m.devices} devices, ${m.layers.length} layer${m.layers.length === 1 ? '' : 's'}):`,
    `  vLLM balancedness (mean/max rank load): min ${f(m.vllm.min)}, p50 ${f(m.vllm.p50)}, p90 ${f(m.vllm.p90)}, avg ${f(m.vllm.avg)}; per layer ${m.vllm.balancedness.map(f).join(' ')}`,
    `  TensorRT-LLM imbalance ratio ((max-mean)/mean): avg ${f(m.trtllm.avg)}; per layer ${m.trtllm.imbalanceRatio.map(f).join(' ')}`,
    `  SGLang utilization rate: ${f(m.sglang.utilizationRate)}`,
  ].join('\n')
}
