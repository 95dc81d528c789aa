// `npm start`: a host runtime routes three batches through moe-route and executes the plans.
import { createLayerRouter, executePlan, hostLogits, toyExpert } from './embed.mjs'

const experts = 8
const topK = 2
const hidden = 16
const tokens = 128
const devices = 2
const router = createLayerRouter({ experts, topK, hidden, devices, capacityFactor: 1.25 })

for (let id = 0; id < 3; id++) {
  const logits = hostLogits(tokens, experts, id + 1)
  // Tokens live on the device of their sequence; experts are spread over the devices.
  const sourceDevice = Int32Array.from({ length: tokens }, (_, t) => (t < tokens / 2 ? 0 : 1))
  const { plan, dropped, telemetry } = router.route({ id, tokens, logits, sourceDevice })
  const x = Float32Array.from({ length: tokens * hidden }, (_, i) => Math.sin(i))
  const y = executePlan(plan, x, hidden, toyExpert)
  console.log(
    `batch ${id}: rows per expert [${Array.from(plan.counts).join(' ')}], capacity ${telemetry.policies[0].capacity}, ` +
      `dropped ${dropped.length}/${telemetry.pairsBefore} pairs, ${plan.traffic.bytesCrossDevice} bytes cross-device, ` +
      `output[0..3] ${Array.from(y.subarray(0, 3), (v) => v.toFixed(3)).join(' ')}`,
  )
}
