// `npm start`: routes a few skewed batches through a MoE engine whose policy stack is
// entropy-drop, and shows that the dropped pairs belong to the most uncertain tokens.
import { createMoe } from '@moe-route/core'
import { randomLogits } from '@moe-route/core/testing'
import { pathToFileURL } from 'node:url'
import entropyDropPolicy, { tokenEntropy } from 'moe-route-policy-entropy-drop'

/** Runs the demo; returns the numbers it prints. */
export function runDemo({ batches = 4, tokens = 256, log = console.log } = {}) {
  const model = { name: 'demo', experts: 8, topK: 2, hidden: 64, intermediate: 128, normalizeTopK: true }
  const engine = createMoe({
    plugins: [entropyDropPolicy],
    config: { model, policies: [{ use: 'entropy-drop', options: { capacityFactor: 1.0 } }] },
  })
  let pairs = 0
  let dropped = 0
  let hDropped = 0
  let hKept = 0
  let nKept = 0
  for (let id = 0; id < batches; id++) {
    // Random logits with experts 0 and 1 favoured, so they overflow their capacity.
    const logits = randomLogits(tokens, model.experts, 100 + id, 1.5)
    for (let t = 0; t < tokens; t++) {
      logits[t * model.experts] += 1.2
      logits[t * model.experts + 1] += 0.6
    }
    const r = engine.route({ id, tokens, logits })
    const h = tokenEntropy(r.routing)
    const hit = new Set(r.dropped.map((d) => d.token))
    for (const d of r.dropped) hDropped += h[d.token]
    for (let t = 0; t < tokens; t++) {
      if (hit.has(t)) continue
      hKept += h[t]
      nKept++
    }
    pairs += r.telemetry.pairsBefore
    dropped += r.telemetry.droppedPairs
    log(
      `batch ${id}: capacity ${r.telemetry.policies[0].capacity}, dropped ${r.telemetry.droppedPairs}/${r.telemetry.pairsBefore} pairs, ` +
        `load ${r.telemetry.loadAfter.join(' ')}`,
    )
  }
  const summary = {
    policy: `${entropyDropPolicy.meta.package}@${entropyDropPolicy.meta.version}`,
    pairs,
    dropped,
    droppedFraction: dropped / pairs,
    meanEntropyDropped: dropped ? hDropped / dropped : 0,
    meanEntropyKept: nKept ? hKept / nKept : 0,
  }
  log(
    `${summary.policy}: dropped ${(summary.droppedFraction * 100).toFixed(2)}% of pairs; mean routing entropy ` +
      `of tokens with a dropped pair ${summary.meanEntropyDropped.toFixed(3)} nats vs ${summary.meanEntropyKept.toFixed(3)} for the others`,
  )
  return summary
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) runDemo()
