// A Mixtral-8x7B-shaped MoE layer (E = 8, k = 2, renormalised top-2; H and I scaled down so
// it runs on a software adapter) through moe-route's engine. On the WebGPU backend the whole
// configured layer is one device pipeline: the gate, the softmax-top-k router, the policy stack
// (reroute overflow to the next-best expert with room, then capacity-drop as a hard cap) through
// their GPU lowerings, the grouping, the grouped SwiGLU experts and the combine, with the
// weights generated on the device from the config's seed (f16) and only telemetry read back.
import { createMoe, createRegistry, TokenStream } from '@moe-route/core'
import cpuBackend, { relativeL2 } from '@moe-route/backend-cpu'
import { randomHidden } from '@moe-route/workloads'
import webgpuBackend, { probeAdapter } from '@moe-route/backend-webgpu'
import capacityDrop from '@moe-route/policy-capacity/capacity-drop'
import reroute from '@moe-route/policy-capacity/reroute'

/** The layer's shape: Mixtral's E, k and renormalisation; H 4096 → 256, I 14336 → 896. */
export const MODEL = { name: 'mixtral-8x7b (H, I scaled 1/16)', experts: 8, topK: 2, hidden: 256, intermediate: 896, normalizeTopK: true }

/** The policy stack, in order. */
export const POLICIES = [
  { use: 'reroute', options: { capacityFactor: 1.25 } },
  { use: 'capacity-drop', options: { capacityFactor: 1.5 } },
]

/** The WebGPU adapter's description, or null when there is none (no GPU, no lavapipe). */
export const findAdapter = () => probeAdapter()

/**
 * Runs `batches` batches of `tokens` tokens through the layer on `backend` ('webgpu' or
 * 'cpu') as a bounded stream; returns each batch's output and telemetry, and the adapter.
 * @param {{ backend: 'webgpu' | 'cpu', batches?: number, tokens?: number }} o
 */
export async function runLayer({ backend, batches = 4, tokens = 64 }) {
  const engine = createMoe({
    registry: createRegistry([cpuBackend, webgpuBackend, reroute, capacityDrop]),
    // seeded normal(0, 0.05) weights: made on the GPU (f16) by webgpu, on the host (f32) by cpu
    config: { model: MODEL, backend: { use: backend }, policies: POLICIES, weights: { seed: 1, std: 0.05 }, seed: 1 },
  })
  const stages = await engine.ready() // where each stage runs (device pipelines), shaders compiled
  const stream = new TokenStream(engine, { capacity: 2 })
  const producer = (async () => {
    for (let id = 0; id < batches; id++) await stream.write({ id, tokens, hidden: randomHidden(tokens, MODEL.hidden, 100 + id) })
    stream.end()
  })()
  const results = []
  try {
    for await (const r of stream) results.push({ output: r.output, telemetry: r.telemetry })
    await producer
  } finally {
    await engine.dispose()
  }
  return { adapter: backend === 'webgpu' ? await engine.backend?.info().adapter : 'cpu', stages, results }
}

/** Relative L2 error of each batch's GPU output against the CPU reference. */
export function compare(gpu, cpu) {
  return gpu.results.map((r, i) => relativeL2(r.output, cpu.results[i].output))
}
