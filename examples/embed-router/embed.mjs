// How a host runtime (your own inference engine, a WASM or native layer, a Python bridge)
// embeds moe-route: it computes the router logits itself, hands them over as a Float32Array,
// and gets back a dispatch plan — which rows go to which expert, with which combine weight,
// and how many rows cross devices. Plain JavaScript, synchronous, no streams.
import { createMoe } from '@moe-route/core'
import capacityDrop from '@moe-route/policy-capacity/capacity-drop'

/**
 * Builds the router once per layer: the model shape, the expert-parallel layout and the
 * policy stack, validated up front (a bad option throws here, naming the plugin and field).
 * @param {{ experts: number, topK: number, hidden: number, devices: number, capacityFactor: number }} o
 */
export function createLayerRouter(o) {
  return createMoe({
    plugins: [capacityDrop],
    config: {
      model: { name: 'host-layer', experts: o.experts, topK: o.topK, hidden: o.hidden, intermediate: 4 * o.hidden, normalizeTopK: true },
      devices: o.devices,
      policies: [{ use: 'capacity-drop', options: { capacityFactor: o.capacityFactor } }],
    },
  })
}

/**
 * What the host does with a plan: for each expert, gather its rows (`rowToken`), run the
 * expert on them, and add `rowWeight × expert(x)` back into each token's output. Dropped
 * pairs have no row, so they contribute nothing.
 * @param {import('@moe-route/core').DispatchPlan} plan
 * @param {Float32Array} x tokens × hidden activations
 * @param {number} hidden
 * @param {(expert: number, row: Float32Array) => Float32Array} expert the host's expert FFN
 */
export function executePlan(plan, x, hidden, expert) {
  const out = new Float32Array(plan.tokens * hidden)
  for (let e = 0; e < plan.experts; e++) {
    for (let r = plan.offsets[e]; r < plan.offsets[e + 1]; r++) {
      const t = plan.rowToken[r]
      if (t < 0) continue // padding row (static dispatchers only)
      const y = expert(e, x.subarray(t * hidden, (t + 1) * hidden))
      for (let h = 0; h < hidden; h++) out[t * hidden + h] += plan.rowWeight[r] * y[h]
    }
  }
  return out
}

/** A toy expert: scales the row by (expert + 1). Stands in for the host's FFN kernel. */
export const toyExpert = (e, row) => row.map((v) => v * (e + 1))

/** Seeded logits skewed toward expert 0, as a host's gate might produce them. */
export function hostLogits(tokens, experts, seed) {
  let s = seed >>> 0
  const rand = () => ((s = (Math.imul(s, 1664525) + 1013904223) >>> 0) / 4294967296)
  const logits = new Float32Array(tokens * experts)
  for (let i = 0; i < logits.length; i++) logits[i] = rand() * 4 - 2 + (i % experts === 0 ? 1.5 : 0)
  return logits
}
