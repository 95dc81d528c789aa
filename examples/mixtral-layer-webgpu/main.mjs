// `npm start`: the layer on the WebGPU device next to the CPU reference.
// `node main.mjs --json` prints the numbers as JSON instead (the example's test reads them).
// Exit status 2 when there is no WebGPU adapter.
import { MODEL, POLICIES, compare, findAdapter, runLayer } from './layer.mjs'

process.env.XDG_RUNTIME_DIR ??= '/tmp' // Dawn's Vulkan loader wants one (lavapipe included)
const json = process.argv.includes('--json')
const adapter = await findAdapter()
if (!adapter) {
  console.error('No WebGPU adapter: install a GPU driver or Mesa lavapipe (scripts/install-lavapipe.sh), and set XDG_RUNTIME_DIR.')
  process.exit(2)
}
const t0 = performance.now()
const gpu = await runLayer({ backend: 'webgpu' })
const gpuMs = performance.now() - t0
const cpu = await runLayer({ backend: 'cpu' })
const errors = compare(gpu, cpu)
const batches = gpu.results.map(({ telemetry: t }, i) => ({
  tokens: t.tokens,
  backend: t.backend,
  rerouted: t.reroutedPairs,
  dropped: t.droppedPairs,
  pairs: t.pairsBefore,
  capacity: t.policies.map((p) => p.capacity),
  maxMeanBefore: t.maxMeanBefore,
  maxMeanAfter: t.maxMeanAfter,
  maxLoadAfter: Math.max(...t.loadAfter),
  hostRoundTrips: t.hostRoundTrips ?? {},
  fallback: t.fallback ?? null,
  relL2VsCpu: errors[i],
  cpuDropped: cpu.results[i].telemetry.droppedPairs,
}))
if (json) {
  console.log(JSON.stringify({ adapter, model: MODEL, policies: POLICIES, stages: gpu.stages, gpuMs, batches }))
} else {
  console.log(`${MODEL.name}: E=${MODEL.experts} k=${MODEL.topK} H=${MODEL.hidden} I=${MODEL.intermediate} on ${adapter}`)
  console.log(`policies: ${POLICIES.map((p) => `${p.use} ${JSON.stringify(p.options)}`).join(' → ')}`)
  console.log(`pipeline: ${gpu.stages.map((s) => `${s.stage} [${s.where}]`).join(' → ')}`)
  batches.forEach((b, i) =>
    console.log(
      `batch ${i}: ${b.tokens} tokens, rerouted ${b.rerouted}, dropped ${b.dropped}/${b.pairs}, max/mean load ` +
        `${b.maxMeanBefore.toFixed(2)} → ${b.maxMeanAfter.toFixed(2)} (capacities ${b.capacity.join(', ')}) on ${b.backend}` +
        `${b.fallback ? ` (fell back: ${b.fallback.reason})` : ''}, rel. L2 vs CPU ${b.relL2VsCpu.toExponential(2)}`,
    ),
  )
  console.log(`${batches.length} batches on the GPU in ${gpuMs.toFixed(0)} ms`)
}
